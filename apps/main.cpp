// fovea: train, evaluate and inspect CNNs; run single ops; benchmark kernels.
//
// One voice for every command (issue 13): the policies below apply to every option of every subcommand, so
// a command only declares its options and their checks (apps/flags.h).
//   - a usage error (a bad flag, value, spec or input file) prints "fovea: error: MESSAGE" and exits 2;
//   - a runtime failure (I/O, a filesystem error, out of memory, a device error) prints "fovea: error: ..."
//     and exits 1; only device and internal errors carry a source location (for bug reports);
//   - a single-valued option given twice is refused by name ("--batch: given 2 times; give it once").
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>

#include "apps/command.h"
#include "core/error.h"
#include "core/io.h"
#include "cpu_reference/blas.h"

namespace fovea::app {

std::vector<CommandEntry>& commands() {
  static std::vector<CommandEntry> all;
  return all;
}

Command::Command(std::string name, std::string help, Setup setup) {
  commands().push_back({std::move(name), std::move(help), std::move(setup)});
}

namespace {

// Options that take one value (or flags): repeated occurrences are collected (the last one kept) so that the
// check after parsing can name the option, instead of CLI11's "At Most 1 required but received 3".
bool single_valued(const CLI::Option* o) {
  return o->get_items_expected_max() <= 1;
}

void collect_repeats(CLI::App& sub) {
  for (CLI::Option* o : sub.get_options())
    if (single_valued(o)) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void refuse_repeats(const CLI::App& sub) {
  for (const CLI::Option* o : sub.get_options())
    if (single_valued(o) && o->count() > 1)
      throw UsageError(cat(o->get_name(), ": given ", o->count(), " times; give it once"));
}

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "fovea: error: %s\n", message.c_str());
  std::fprintf(stderr, "Run 'fovea%s%s --help' for the options.\n", command.empty() ? "" : " ", command.c_str());
  return kUsageError;
}

}  // namespace
}  // namespace fovea::app

int main(int argc, char** argv) {
  using namespace fovea::app;
  // A file-size limit (ulimit -f) makes the write fail with EFBIG, reported with the file's name, instead of
  // killing the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"fovea: a deep-learning engine for convolutional networks (C++20 and CUDA)", "fovea"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fovea 0.1");
  std::map<CLI::App*, Action> actions;
  for (auto& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    actions[sub] = c.setup(*sub);
    collect_repeats(*sub);
  }
  std::string command;
  try {
    app.parse(argc, argv);
    for (auto& [sub, action] : actions)
      if (sub->parsed()) {
        command = sub->get_name();
        refuse_repeats(*sub);
      }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) command = sub->get_name();
    return usage_error(command, e.what());
  } catch (const fovea::UsageError& e) {
    return usage_error(command, e.what());
  }
  // The CPU reference's BLAS kernels are chosen before any command runs (cpu_reference/blas.h).
  if (const std::string& e = fovea::ref::blas_info().error; !e.empty()) return usage_error(command, e);
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const fovea::UsageError& e) {
    std::fprintf(stderr, "fovea: error: %s\n", e.what());
    return kUsageError;
  } catch (const fovea::Error& e) {
    // Device and internal errors keep where they were raised: a user can quote it in a bug report. A runtime
    // failure (I/O, a diverged run) is the user's to act on and says only what happened.
    const bool located = e.internal() || dynamic_cast<const fovea::DeviceError*>(&e);
    const std::string where = located ? e.where() : std::string();
    std::fprintf(stderr, "fovea: %s%s%s%s\n", e.internal() ? "internal error: " : "error: ", e.what(),
                 where.empty() ? "" : " at ", where.c_str());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "fovea: error: %s\n", fovea::filesystem_message(e).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "fovea: error: out of host memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fovea: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
