#include "apps/flags.h"

#include <fmt/core.h>

#include <cstdio>
#include <optional>

#include "core/error.h"
#include "core/library_module.h"
#include "core/parse.h"

namespace fovea::app {

CLI::Validator at_least(double lo, bool strict, bool integer) {
  const std::string rule = fmt::format("{} {:g}", strict ? ">" : ">=", lo);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::optional<double> v = integer ? std::optional<double>() : try_parse_float(text);
        const std::optional<int64_t> i = integer ? try_parse_int(text) : std::optional<int64_t>();
        if (!v && !i) return fmt::format("must be {}, got '{}'", integer ? "an integer" : "a number", text);
        const double x = i ? double(*i) : *v;
        if (strict ? x > lo : x >= lo) return std::string();
        return fmt::format("must be {}, got {}", rule, text);
      },
      rule);
}

CLI::Validator in_range(double lo, double hi, bool hi_open) {
  const std::string range = fmt::format("[{:g}, {:g}{}", lo, hi, hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::optional<double> v = try_parse_float(text);
        if (!v) return fmt::format("must be a number, got '{}'", text);
        if (*v >= lo && (hi_open ? *v < hi : *v <= hi)) return std::string();
        return fmt::format("must be in {}, got {}", range, text);
      },
      range);
}

CLI::Validator one_of(std::vector<std::string> choices) {
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        for (const std::string& c : choices)
          if (text == c) return std::string();
        return fmt::format("must be one of {}; got '{}'", list, text);
      },
      "{" + list + "}");
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          (void)parse_uint(text, "value");
        } catch (const UsageError&) {
          return fmt::format("must be an integer in [0, 2^64) without a sign, got '{}'", text);
        }
        return std::string();
      },
      "UINT64");
}

Device resolve_device(const std::string& text, const std::string& flag, bool notice) {
  if (text == "auto") {
    if (cuda_available()) return kCUDA;
    if (notice)
      std::fprintf(stderr, "fovea: no GPU is visible (%s), so this runs on the CPU device (%s cpu)\n",
                   cuda_unavailable_reason().c_str(), flag.c_str());
    return kCPU;
  }
  Device d;
  try {
    d = parse_device(text);
  } catch (const UsageError&) {
    FOVEA_FAIL(flag, ": '", text, "' is not a device (expected auto, cpu, emu, cuda or cuda:N)");
  }
  require_device(d);
  return d;
}

Backend default_backend(Device d, std::string* why) {
  if (d.type != DeviceType::cpu) {
    if (why) *why = "ours (custom) off device cpu";
    return Backend::custom;
  }
  if (load_module(Backend::onednn)) {
    if (why) *why = "onednn (its module loaded)";
    return Backend::onednn;
  }
  if (why) *why = "the reference (backend onednn unavailable: " + module_status(Backend::onednn) + ")";
  return Backend::custom;
}

Backend resolve_backend(const std::string& text, Device d, const std::string& flag) {
  if (text == "auto") return default_backend(d);
  const Backend b = parse_backend(text);
  check_backend_device(flag.c_str(), b, d);
  return b;
}

}  // namespace fovea::app
