// Subcommands of the `fovea` executable, git-style. Each apps/<name>.cpp registers itself:
//   static fovea::app::Command info_command("info", "Show the devices this build can use", [](CLI::App& app) {
//     auto opts = std::make_shared<InfoOptions>();  // options live as long as the returned action
//     app.add_flag(...);
//     return [opts] { return run_info(*opts); };    // exit code
//   });
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace fovea::app {

using Action = std::function<int()>;
using Setup = std::function<Action(CLI::App&)>;

struct Command {
  Command(std::string name, std::string help, Setup setup);
};

struct CommandEntry {
  std::string name, help;
  Setup setup;
};
std::vector<CommandEntry>& commands();

// Exit code for bad arguments and bad input data.
inline constexpr int kUsageError = 2;

}  // namespace fovea::app
