// Files: everything fovea writes goes to a temporary file in the same folder and is renamed over
// the target, so a crash never leaves a half-written checkpoint or output.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace fovea {

void write_file_atomic(const std::string& path, std::string_view bytes);
// Whole file; an error names the file and the reason (missing, unreadable).
std::string read_file(const std::string& path);

}  // namespace fovea
