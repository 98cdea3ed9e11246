// fovea: train, evaluate and inspect CNNs; run single ops; benchmark kernels.
#include <cstdio>
#include <map>

#include "apps/command.h"
#include "core/error.h"

namespace fovea::app {

std::vector<CommandEntry>& commands() {
  static std::vector<CommandEntry> all;
  return all;
}

Command::Command(std::string name, std::string help, Setup setup) {
  commands().push_back({std::move(name), std::move(help), std::move(setup)});
}

}  // namespace fovea::app

int main(int argc, char** argv) {
  using namespace fovea::app;
  CLI::App app{"fovea: a deep-learning engine for convolutional networks (C++20 and CUDA)", "fovea"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fovea 0.1");
  std::map<CLI::App*, Action> actions;
  for (auto& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    actions[sub] = c.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kUsageError;
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const fovea::UsageError& e) {
    std::fprintf(stderr, "fovea: error: %s\n", e.what());
    return kUsageError;
  } catch (const fovea::Error& e) {
    // Device and internal errors keep where they were raised; a user can quote it in a bug report.
    const std::string where = e.where();
    std::fprintf(stderr, "fovea: %s%s%s%s\n", e.internal() ? "internal error: " : "error: ", e.what(),
                 where.empty() ? "" : " at ", where.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fovea: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
