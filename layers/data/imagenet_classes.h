// Class names: ImageNet-1k's, shipped inside fovea, and class-name files of one name per line.
#pragma once
#include <string>
#include <vector>

namespace fovea::data {

// The 1000 ImageNet-1k class names in the order of torchvision's classifiers' outputs (name i is
// class i, "tench" to "toilet tissue"): layers/data/imagenet_classes.txt, written by
// scripts/make_imagenet_classes.py from torchvision 0.14's weights metadata and compiled in.
const std::vector<std::string>& imagenet_classes();

// Names from text of one name per line ("\n" or "\r\n"; a last line without a newline is fine).
// An empty file, an empty or blank line, a name with leading or trailing spaces, or a name that
// appears twice is an error naming `name` (the file) and the line.
std::vector<std::string> parse_class_names(const std::string& text, const std::string& name);
std::vector<std::string> read_class_names(const std::string& path);

}  // namespace fovea::data
