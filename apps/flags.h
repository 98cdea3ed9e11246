// Checks of command-line values shared by the commands, through core/parse.h (the one number parser): short
// messages naming the rule and the value ("must be > 0, got 0"; CLI11 puts the flag in front) instead of
// CLI11's ranges, which print DBL_MAX; and the device flag, where "auto" is resolved.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dispatch.h"

namespace fovea::app {

// A number >= lo (> lo when strict); with `integer`, a whole number.
CLI::Validator at_least(double lo, bool strict, bool integer = false);
// A number in [lo, hi], or [lo, hi) when hi_open.
CLI::Validator in_range(double lo, double hi, bool hi_open = false);
// One of `choices` ("--optimizer: must be one of sgd, adamw; got 'adam'").
CLI::Validator one_of(std::vector<std::string> choices);
// An integer in [0, 2^64) written without a sign ("-1" is refused, not read as 2^64 - 1).
CLI::Validator unsigned_integer();

inline const CLI::Validator kPositive = at_least(0, true), kNonNegative = at_least(0, false);
inline const CLI::Validator kPositiveInt = at_least(0, true, true), kNonNegativeInt = at_least(0, false, true);

// "auto" (cuda when a GPU is visible, else cpu, and then a one-line notice on stderr when `notice`), cpu,
// emu, cuda or cuda:N; a device this build or machine cannot use is a UsageError naming `flag`.
Device resolve_device(const std::string& text, const std::string& flag, bool notice = true);

// The --backend values, for one_of and the help texts.
inline const std::vector<std::string> kBackendNames = {"auto", "custom", "reference", "cudnn", "onednn"};
inline constexpr const char* kBackendHelp =
    "auto (the device's default: onednn on cpu when its module loads, else ours), custom (ours: the reference on "
    "cpu, our kernels on emu and cuda; 'reference' is the same), cudnn (on cuda) or onednn (on cpu)";
// The default backend of a device: onednn on cpu when its module loads (faster than the reference on every net of
// the train-step suite, README), else custom. `why` says which and why, for `fovea info` and notices.
Backend default_backend(Device d, std::string* why = nullptr);
// "auto": default_backend(d); else parse_backend, and a backend its device cannot run refused naming `flag`
// ("--backend onednn runs on device cpu only, not emu").
Backend resolve_backend(const std::string& text, Device d, const std::string& flag);

}  // namespace fovea::app
