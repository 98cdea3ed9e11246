#include "layers/data/imagenet_classes.h"

#include <unordered_map>

#include "core/error.h"
#include "core/io.h"

namespace fovea::data {

// The text of layers/data/imagenet_classes.txt (generated/imagenet_classes_text.cpp, made by CMake).
extern const char* const kImagenetClassesText;

std::vector<std::string> parse_class_names(const std::string& text, const std::string& name) {
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> seen;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t n = names.size() + 1;  // line number
    FOVEA_CHECK(line.find_first_not_of(" \t") != std::string::npos, "class name file '", name, "': line ", n,
                " is empty");
    FOVEA_CHECK(line.front() != ' ' && line.front() != '\t' && line.back() != ' ' && line.back() != '\t',
                "class name file '", name, "': line ", n, " ('", line, "') has leading or trailing spaces");
    const auto [it, fresh] = seen.emplace(line, n);
    FOVEA_CHECK(fresh, "class name file '", name, "': line ", n, " repeats '", line, "' from line ", it->second);
    names.push_back(std::move(line));
    pos = end + 1;
  }
  FOVEA_CHECK(!names.empty(), "class name file '", name, "' holds no names");
  return names;
}

std::vector<std::string> read_class_names(const std::string& path) {
  return parse_class_names(read_file(path), path);
}

const std::vector<std::string>& imagenet_classes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = parse_class_names(kImagenetClassesText, "layers/data/imagenet_classes.txt");
    FOVEA_CHECK(v.size() == 1000, "layers/data/imagenet_classes.txt holds ", v.size(), " names, not 1000");
    return v;
  }();
  return names;
}

}  // namespace fovea::data
