// One parser for the numbers and lists in model specs, command-line flags, op attributes and
// augmentation/schedule strings. Whole tokens only ("3x" is not 3), no locale, finite floats only;
// every error is a UsageError naming `what` (e.g. "--batch", "attribute 'stride'") and the text.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fovea {

// The value, or nullopt when `text` is not exactly one number of that kind (for callers that try
// several readings of a token).
std::optional<int64_t> try_parse_int(std::string_view text);
std::optional<double> try_parse_float(std::string_view text);
std::optional<uint64_t> try_parse_uint(std::string_view text);  // no sign: "-1" is not 2^64-1

int64_t parse_int(std::string_view text, std::string_view what);
uint64_t parse_uint(std::string_view text, std::string_view what);  // refuses a sign: "-1" is not 2^64-1
double parse_float(std::string_view text, std::string_view what);
bool parse_bool(std::string_view text, std::string_view what);  // 1/0, true/false, yes/no, on/off

// "a,b,c" -> {"a", "b", "c"}; empty items are kept (callers decide whether they are an error).
std::vector<std::string_view> split(std::string_view text, char sep);
std::vector<int64_t> parse_int_list(std::string_view text, std::string_view what, char sep = ',');
std::vector<double> parse_float_list(std::string_view text, std::string_view what, char sep = ',');
// "2" -> {2, 2}; "2,1" -> {2, 1} (PyTorch's int-or-pair arguments such as stride and padding).
std::pair<int64_t, int64_t> parse_int_pair(std::string_view text, std::string_view what);

}  // namespace fovea
