#include "core/parse.h"

#include <charconv>
#include <cmath>

#include "core/error.h"

namespace fovea {

std::optional<int64_t> try_parse_int(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);  // from_chars takes no '+'
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> try_parse_float(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<uint64_t> try_parse_uint(std::string_view text) {
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

int64_t parse_int(std::string_view text, std::string_view what) {
  const std::optional<int64_t> v = try_parse_int(text);
  FOVEA_CHECK(v, what, ": must be an integer, got '", text, "'");
  return *v;
}

uint64_t parse_uint(std::string_view text, std::string_view what) {
  const std::optional<uint64_t> v = try_parse_uint(text);
  FOVEA_CHECK(v, what, ": must be a non-negative integer below 2^64, got '", text, "'");
  return *v;
}

double parse_float(std::string_view text, std::string_view what) {
  const std::optional<double> v = try_parse_float(text);
  FOVEA_CHECK(v, what, ": must be a finite number, got '", text, "'");
  return *v;
}

bool parse_bool(std::string_view text, std::string_view what) {
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  FOVEA_FAIL(what, ": must be 1 or 0 (true or false), got '", text, "'");
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::vector<int64_t> parse_int_list(std::string_view text, std::string_view what, char sep) {
  std::vector<int64_t> out;
  for (std::string_view item : split(text, sep)) out.push_back(parse_int(item, what));
  return out;
}

std::vector<double> parse_float_list(std::string_view text, std::string_view what, char sep) {
  std::vector<double> out;
  for (std::string_view item : split(text, sep)) out.push_back(parse_float(item, what));
  return out;
}

std::pair<int64_t, int64_t> parse_int_pair(std::string_view text, std::string_view what) {
  const std::vector<std::string_view> items = split(text, ',');
  FOVEA_CHECK(items.size() <= 2, what, ": must be one integer or a pair 'A,B', got '", text, "'");
  const int64_t a = parse_int(items[0], what);
  return {a, items.size() == 2 ? parse_int(items[1], what) : a};
}

}  // namespace fovea
