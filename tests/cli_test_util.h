// Tests that run the `fovea` command (fovea_test(... NEEDS_FOVEA_BINARY) defines FOVEA_BINARY).
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

#ifndef FOVEA_BINARY
#error "FOVEA_BINARY must be the path of the fovea executable (fovea_test(... NEEDS_FOVEA_BINARY))"
#endif

namespace fovea::test {

struct CliResult {
  int code = -1;       // exit status; -1 when the command could not run or was killed
  std::string output;  // stdout and stderr together
};

// `command` through the shell.
inline CliResult run_command(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `fovea ARGS` through the shell.
inline CliResult run_fovea(const std::string& args) {
  return run_command(std::string(FOVEA_BINARY) + " " + args);
}

}  // namespace fovea::test
