// The emulator's settings: environment variables read once, overridable at run time.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "core/emu/emu.h"
#include "core/emu/settings.h"
#include "core/error.h"
#include "core/parse.h"

namespace fovea::emu {
namespace {

#if defined(FOVEA_EMU_SANITIZE)
constexpr bool kSanitize = true;
constexpr size_t kDefaultStack = 256 * 1024;  // AddressSanitizer's red zones make frames bigger
#else
constexpr bool kSanitize = false;
constexpr size_t kDefaultStack = 64 * 1024;
#endif
constexpr size_t kMinStack = 16 * 1024;
constexpr size_t kMaxStack = size_t(1) << 30;
constexpr int kMaxWorkers = 256;
constexpr int kDefaultArch = 800;

bool known_arch(int sm) {
  for (int k : {700, 750, 800, 860, 870, 890, 900})
    if (sm == k) return true;
  return false;
}

size_t checked_stack(uint64_t bytes, const char* what) {
  FOVEA_CHECK(bytes >= kMinStack && bytes <= kMaxStack, what, ": fiber stack size must be ", kMinStack / 1024,
              " KiB .. 1 GiB, got ", bytes, " bytes");
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

struct Settings {
  std::mutex mu;  // guards schedule (two words)
  Schedule schedule;
  std::atomic<int> workers{0};  // 0: default_workers
  int default_workers = 1;
  std::atomic<bool> lenient{false};
  std::atomic<bool> poison{kSanitize};
  std::atomic<size_t> stack{kDefaultStack};
  std::atomic<int> arch{0};  // 0: kDefaultArch

  void read_checks() {
    unsigned flags = 0;
    if (const char* s = std::getenv("FOVEA_EMU_CHECK"); s && *s) {
      try {
        flags = parse_checks(s);
      } catch (const Error& e) {
        detail::g_check_flags.store(0);
        FOVEA_FAIL("environment variable FOVEA_EMU_CHECK: ", e.what());
      }
    }
    detail::g_check_flags.store(flags);
  }

  Settings() {
    const unsigned hw = std::thread::hardware_concurrency();
    default_workers = hw == 0 ? 1 : int(std::min<unsigned>(hw, kMaxWorkers));
    if (const char* s = std::getenv("FOVEA_EMU_SCHEDULE"); s && *s) {
      try {
        schedule = Schedule::parse(s);
      } catch (const Error& e) {
        FOVEA_FAIL("environment variable FOVEA_EMU_SCHEDULE: ", e.what());
      }
    }
    if (const char* s = std::getenv("FOVEA_EMU_WORKERS"); s && *s) {
      const std::optional<uint64_t> n = try_parse_uint(s);
      FOVEA_CHECK(n && *n >= 1 && *n <= kMaxWorkers, "environment variable FOVEA_EMU_WORKERS must be an integer in 1..",
                  kMaxWorkers, ", got '", s, "'");
      default_workers = int(*n);
    }
    if (const char* s = std::getenv("FOVEA_EMU_LENIENT"); s && *s) lenient = std::string_view(s) != "0";
    if (const char* s = std::getenv("FOVEA_EMU_POISON"); s && *s) poison = kSanitize || std::string_view(s) != "0";
    if (const char* s = std::getenv("FOVEA_EMU_STACK_KB"); s && *s) {
      const std::optional<uint64_t> kb = try_parse_uint(s);
      FOVEA_CHECK(kb && *kb <= kMaxStack / 1024,
                  "environment variable FOVEA_EMU_STACK_KB must be an integer number of KiB, got '", s, "'");
      stack = checked_stack(*kb * 1024, "environment variable FOVEA_EMU_STACK_KB");
    }
    if (const char* s = std::getenv("FOVEA_EMU_ARCH"); s && *s) {
      const std::optional<uint64_t> sm = try_parse_uint(s);
      FOVEA_CHECK(sm && *sm <= 10000 && known_arch(int(*sm)),
                  "environment variable FOVEA_EMU_ARCH must be one of 700, 750, 800, 860, 870, 890, 900, got '", s,
                  "'");
      arch = int(*sm);
    }
    read_checks();
  }
};

Settings& settings() {
  static Settings s;
  return s;
}

}  // namespace

Schedule Schedule::parse(std::string_view text) {
  if (text == "forward") return {Order::forward, 0};
  if (text == "reverse") return {Order::reverse, 0};
  if (text == "shuffle") return {Order::shuffle, 1};
  if (text.starts_with("shuffle:"))
    if (const std::optional<uint64_t> seed = try_parse_uint(text.substr(8))) return {Order::shuffle, *seed};
  FOVEA_FAIL("emu schedule: expected forward, reverse or shuffle:SEED (SEED a decimal integer), got '", text, "'");
}

std::string Schedule::str() const {
  switch (order) {
    case Order::forward: return "forward";
    case Order::reverse: return "reverse";
    case Order::shuffle: return cat("shuffle:", seed);
  }
  return "?";
}

Schedule schedule() {
  Settings& s = settings();
  std::lock_guard lock(s.mu);
  return s.schedule;
}
void set_schedule(Schedule sch) {
  Settings& s = settings();
  std::lock_guard lock(s.mu);
  s.schedule = sch;
}

int workers() {
  if (kSanitize) return 1;
  Settings& s = settings();
  const int n = s.workers.load();
  return n > 0 ? n : s.default_workers;
}
void set_workers(int n) {
  FOVEA_CHECK(n >= 0 && n <= kMaxWorkers, "emu set_workers: argument 'n' must be 0 (default) .. ", kMaxWorkers,
              ", got ", n);
  settings().workers = n;
}

bool lenient() {
  return settings().lenient.load();
}
void set_lenient(bool on) {
  settings().lenient = on;
}

bool poison() {
  return settings().poison.load();
}
void set_poison(bool on) {
  settings().poison = kSanitize || on;
}

unsigned parse_checks(std::string_view text) {
  unsigned mask = 0;
  if (text.empty() || text == "none" || text == "0") return 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view word = text.substr(0, comma);
    if (word == "memcheck")
      mask |= kMemcheck;
    else if (word == "initcheck")
      mask |= kInitcheck;
    else if (word == "racecheck")
      mask |= kRacecheck;
    else if (word == "racecheck-global")
      mask |= kRacecheck | kRacecheckGlobal;
    else
      FOVEA_FAIL(
          "emu checks: expected a comma-separated list of memcheck, initcheck, racecheck, racecheck-global "
          "(or none), got '",
          text, "'");
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return mask;
}

std::string checks_str(unsigned mask) {
  std::string out;
  auto add = [&](unsigned bit, const char* name) {
    if (!(mask & bit)) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(kMemcheck, "memcheck");
  add(kInitcheck, "initcheck");
  if (mask & kRacecheckGlobal)
    add(kRacecheckGlobal, "racecheck-global");
  else
    add(kRacecheck, "racecheck");
  return out.empty() ? "none" : out;
}

unsigned checks() {
  settings();  // reads FOVEA_EMU_CHECK once
  return detail::check_flags() & ~(detail::kProfileFlag | detail::kUnreadFlag);
}
void set_checks(unsigned mask) {
  settings();
  FOVEA_CHECK((mask & ~unsigned(kMemcheck | kInitcheck | kRacecheck | kRacecheckGlobal)) == 0,
              "emu set_checks: unknown check bits ", mask);
  if (mask & kRacecheckGlobal) mask |= kRacecheck;
  detail::set_check_flags(mask | (detail::check_flags() & detail::kProfileFlag));
}

int arch() {
  const int a = settings().arch.load();
  return a ? a : kDefaultArch;
}
void set_arch(int sm) {
  FOVEA_CHECK(sm == 0 || known_arch(sm), "emu set_arch: argument 'sm' must be 0 (default) or one of 700, 750, 800, ",
              "860, 870, 890, 900, got ", sm);
  settings().arch = sm;
}

size_t stack_size() {
  return settings().stack.load();
}
void set_stack_size(size_t bytes) {
  settings().stack = checked_stack(bytes, "emu set_stack_size");
}

namespace detail {
void set_check_flags(unsigned flags) {
  settings();
  g_check_flags.store(flags & ~kUnreadFlag);
}
bool instrumentation_wanted() {
  settings();
  return (check_flags() & ~kUnreadFlag) != 0;
}

LaunchSettings launch_settings() {
  Settings& s = settings();
  LaunchSettings out;
  {
    std::lock_guard lock(s.mu);
    out.schedule = s.schedule;
  }
  out.workers = workers();
  out.lenient = s.lenient.load(std::memory_order_relaxed);
  out.poison = s.poison.load(std::memory_order_relaxed);
  out.stack_bytes = s.stack.load(std::memory_order_relaxed);
  return out;
}
}  // namespace detail

}  // namespace fovea::emu
