// The emulator runtime: worker pool, fiber stacks, the per-block scheduler, barriers and warp collectives.
//
// A launch hands out block indices to worker threads (the launching thread is one of them). A worker runs one
// block at a time: it makes one fiber per CUDA thread on pooled stacks and resumes the runnable fibers round
// after round, in the schedule's order, each until it blocks (barrier, warp collective) or returns. Blocking
// calls record what the fiber waits for; the fiber that completes a barrier or a warp collective releases the
// others, which run in the next round. A round that finds nothing runnable while the block is unfinished is a
// deadlock, reported with what every thread waits for.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <boost/context/detail/fcontext.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/emu/emu.h"
#include "core/emu/monitor.h"
#include "core/emu/settings.h"
#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FOVEA_EMU_ASAN 1
#endif

namespace fovea::emu {
namespace {

namespace ctx = boost::context::detail;

constexpr int kMaxThreads = 1024;
constexpr int kWords = kMaxThreads / 64;
constexpr int kMaxWarps = kMaxThreads / 32;
constexpr size_t kGuardBytes = 256 * 1024;  // PROT_NONE below every stack: wide, as g++ does not probe big frames

// ------------------------------------------------------------------ stacks
// Stack tops are spread over cache sets: 256 fibers whose tops share their low 16 address bits (equal-size
// mappings, 64 KiB multiples) evict each other from L1 and L2 at every switch, which made barrier-heavy kernels
// several times slower. Each top is moved down by (index % 64) cache lines, and every mapping is one page longer
// than a multiple of 64 KiB, so neighbouring mappings start at different page offsets too.
struct Stack {
  char* map = nullptr;  // mapping start: the guard region, then the usable stack
  size_t map_bytes = 0;
  char* lo = nullptr;   // lowest usable byte
  char* top = nullptr;  // initial stack pointer
  size_t bytes = 0;     // the configured size; top - lo >= bytes
};

Stack map_stack(size_t bytes, size_t index) {
  constexpr size_t kColorBytes = 4096;
  Stack s;
  s.map_bytes = kGuardBytes + bytes + kColorBytes;
  void* p = mmap(nullptr, s.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                 -1, 0);
  FOVEA_CHECK(p != MAP_FAILED, "emu: cannot map a fiber stack of ", bytes, " bytes: ", std::strerror(errno));
  if (mprotect(p, kGuardBytes, PROT_NONE) != 0) {
    const int err = errno;
    munmap(p, s.map_bytes);
    FOVEA_FAIL("emu: cannot protect a fiber stack's guard page: ", std::strerror(err));
  }
  s.map = static_cast<char*>(p);
  s.lo = s.map + kGuardBytes;
  s.top = s.map + s.map_bytes - (index % 64) * 64;
  s.bytes = bytes;
  return s;
}

// ------------------------------------------------------------------ fibers and workers
enum class State : uint8_t { ready, barrier, warp, done };

struct alignas(64) Fiber {  // one cache line
  ctx::fcontext_t context = nullptr;
  uint3 tid{0, 0, 0};
  uint16_t linear = 0;
  State state = State::ready;
  bool started = false;  // false: context is make_fcontext's, start it with jump_fcontext
  detail::BarrierKind barrier_kind = detail::BarrierKind::sync;
  // The warp collective this fiber waits in.
  detail::WarpOp op = detail::WarpOp::sync;
  uint8_t width = 32;
  const char* fn = nullptr;
  uint32_t mask = 0;
  int32_t arg = 0;
  uint64_t value = 0;
  uint64_t result = 0;
#if defined(FOVEA_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

struct ForcedUnwind {};  // thrown from a blocking call to unwind a fiber of an aborted block

// A line of device printf: sorted by (block, thread, seq) when the launch ends.
struct PrintfLine {
  uint64_t block;
  uint32_t thread;
  uint64_t seq;
  std::string text;
};

struct Launch {
  const char* name;
  dim3 grid, block;
  size_t smem_bytes;
  detail::LaunchMonitor* monitor;  // null unless instrumented
  detail::KernelBody invoke;
  const void* body;
  int threads;
  uint64_t blocks;
  detail::LaunchSettings settings;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu{};
  std::string error{};                     // the first failure wins
  std::vector<PrintfLine> printf_lines{};  // guarded by error_mu

  void fail(std::string message) {
    std::lock_guard lock(error_mu);
    if (!failed.load(std::memory_order_relaxed)) {
      error = std::move(message);
      failed.store(true);
    }
  }
};

void fiber_entry(ctx::transfer_t t);

struct Worker {
  std::vector<Stack> stacks;
  size_t stack_bytes = 0;
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreads);
  dim3 fibers_for{0, 0, 0};  // the block shape fibers[].tid was computed for

  // The running block.
  Launch* launch = nullptr;
  ctx::fcontext_t scheduler = nullptr;
  Fiber* cur = nullptr;
  int n = 0, words = 0, done = 0;
  int at_barrier = 0, barrier_true = 0;
  uint64_t ready[kWords] = {};
  uint64_t barrier_bits[kWords] = {};
  uint32_t live[kMaxWarps] = {};
  uint32_t waiting[kMaxWarps] = {};
  bool aborting = false;
  bool lenient = false;
  std::exception_ptr error;
  int error_thread = -1;
  uint64_t rng = 0;
  uint16_t order[kMaxThreads] = {};  // the running round
  int pos = 0, count = 0;

  void* dynamic_smem = nullptr;
  size_t dynamic_smem_bytes = 0;
  bool has_dynamic_smem = false;

  detail::WorkerMonitor* monitor = nullptr;  // the instrumented launch's per-worker state
  uint64_t block_linear = 0;
  uint64_t printf_seq = 0;
  std::vector<PrintfLine> printf_lines;  // this worker's lines of the running launch

#if defined(FOVEA_EMU_ASAN)
  const void* scheduler_stack = nullptr;
  size_t scheduler_stack_bytes = 0;
#else
  void* alt_stack = nullptr;  // for the stack-overflow message, when this thread had none
#endif

  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void release_stacks() {
    for (Stack& s : stacks) munmap(s.map, s.map_bytes);
    stacks.clear();
  }
  void free_dynamic_smem() {
    if (has_dynamic_smem) ::operator delete(dynamic_smem, std::align_val_t(16));
    dynamic_smem = nullptr;
    has_dynamic_smem = false;
  }
};

inline const void* stack_bottom(const Worker& w, const Fiber* f) {
  return w.stacks[f->linear].lo;
}
inline size_t stack_bytes(const Worker& w, const Fiber* f) {
  const Stack& s = w.stacks[f->linear];
  return size_t(s.top - s.lo);
}

Worker& this_worker() {
  thread_local std::unique_ptr<Worker> worker;
  if (!worker) worker = std::make_unique<Worker>();
  return *worker;
}

inline Worker& running_worker(const char* fn) {
  void* w = detail::current.worker;
  if (w == nullptr) FOVEA_FAIL(fn, " called outside a kernel running on the emulator");
  return *static_cast<Worker*>(w);
}

// ------------------------------------------------------------------ stack overflow message
#if !defined(FOVEA_EMU_ASAN)
struct sigaction g_previous_segv;
char g_message[512];

void append(char*& p, char* end, const char* s) {
  while (*s && p < end) *p++ = *s++;
}
void append_number(char*& p, char* end, unsigned long long v) {
  char digits[24];
  int k = 0;
  do {
    digits[k++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  while (k && p < end) *p++ = digits[--k];
}

void on_segv(int sig, siginfo_t* info, void* uc) {
  auto* w = static_cast<Worker*>(detail::current.worker);
  if (w && w->cur && w->launch) {
    const Stack& s = w->stacks[w->cur->linear];
    const char* a = static_cast<const char*>(info->si_addr);
    if (a >= s.map && a < s.lo) {
      char* p = g_message;
      char* end = g_message + sizeof(g_message) - 1;
      append(p, end, "fovea emu: fiber stack overflow in kernel '");
      append(p, end, w->launch->name);
      append(p, end, "' (thread ");
      append_number(p, end, w->cur->linear);
      append(p, end, " of its block): the stack is ");
      append_number(p, end, s.bytes / 1024);
      append(p, end, " KiB; raise it with FOVEA_EMU_STACK_KB or fovea::emu::set_stack_size()\n");
      [[maybe_unused]] ssize_t r = write(2, g_message, size_t(p - g_message));
    }
  }
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    if (g_previous_segv.sa_sigaction) return g_previous_segv.sa_sigaction(sig, info, uc);
  } else if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN) {
    return g_previous_segv.sa_handler(sig);
  }
  signal(sig, SIG_DFL);  // returning re-executes the access: the default action then ends the process
}

void install_segv_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
}
#endif

Worker::Worker() {
#if !defined(FOVEA_EMU_ASAN)
  install_segv_handler();
  stack_t current_alt{};
  if (sigaltstack(nullptr, &current_alt) == 0 && (current_alt.ss_flags & SS_DISABLE)) {
    constexpr size_t kAltBytes = 64 * 1024;
    alt_stack = std::malloc(kAltBytes);
    if (alt_stack) {
      stack_t alt{};
      alt.ss_sp = alt_stack;
      alt.ss_size = kAltBytes;
      if (sigaltstack(&alt, nullptr) != 0) {
        std::free(alt_stack);
        alt_stack = nullptr;
      }
    }
  }
#endif
}

Worker::~Worker() {
  release_stacks();
  free_dynamic_smem();
#if !defined(FOVEA_EMU_ASAN)
  if (alt_stack) {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    std::free(alt_stack);
  }
#endif
}

// ------------------------------------------------------------------ context switches
// A round runs as a chain: the scheduler resumes the round's first fiber, and every fiber that blocks or
// returns switches straight to the next fiber of the round, the last one back to the scheduler: one switch per
// fiber per round.
//
// Every switch passes the slot where the context being left must be stored (Fiber::context, or
// Worker::scheduler). A suspended context is resumed with ontop_fcontext(target, slot, store_context), which
// stores it on the target's stack and then *returns* into the target. jump_fcontext instead ends in an
// indirect jmp, so the CPU's return-address predictor stays one entry off and every later `ret` (out of
// __syncthreads, back into the kernel) mispredicts: 30-40 ns per switch instead of 10 with ontop, measured
// here with fibers waiting at the same call site. Fresh fibers start with jump_fcontext: make_fcontext's
// trampoline passes the transfer to fiber_entry only on that path.

inline const void* stack_bottom(const Worker& w, const Fiber* f);
inline size_t stack_bytes(const Worker& w, const Fiber* f);

ctx::transfer_t store_context(ctx::transfer_t t) {
  *static_cast<ctx::fcontext_t*>(t.data) = t.fctx;
  return t;
}

// Switches to fiber `to` (null: the scheduler), storing the current context in *slot; returns when resumed.
inline ctx::transfer_t switch_to(Worker& w, Fiber* to, ctx::fcontext_t* slot) {
  ctx::transfer_t t;
  if (to == nullptr) {
    t = ctx::ontop_fcontext(w.scheduler, slot, store_context);
  } else if (to->started) {
    t = ctx::ontop_fcontext(to->context, slot, store_context);
  } else {
    to->started = true;
    t = ctx::jump_fcontext(to->context, slot);
  }
  *static_cast<ctx::fcontext_t*>(t.data) = t.fctx;  // already done by store_context, unless we were fresh
  return t;
}

// The next fiber of the running round, or null when the round is over or the block must stop for an error.
inline Fiber* next_in_round(Worker& w) {
  if (w.pos < w.count && !(w.error && !w.aborting)) return &w.fibers[w.order[w.pos++]];
  return nullptr;
}

#if defined(FOVEA_EMU_ASAN)
// On the resumed side of a switch: AddressSanitizer's bookkeeping, and the scheduler's stack when it jumped here.
inline void asan_arrived(Worker& w, void* own_fake_stack, ctx::transfer_t t) {
  const void* bottom = nullptr;
  size_t bytes = 0;
  __sanitizer_finish_switch_fiber(own_fake_stack, &bottom, &bytes);
  if (t.data == &w.scheduler) {  // the OS thread's own stack, where the chain ends
    w.scheduler_stack = bottom;
    w.scheduler_stack_bytes = bytes;
  }
}
#endif

// Leaves fiber f (blocked, or finished: then this never returns) for the next fiber of the round or the
// scheduler. Returns when f is resumed.
inline void leave(Worker& w, Fiber* f, [[maybe_unused]] bool finished) {
  Fiber* next = next_in_round(w);
  w.cur = next;
  if (next) detail::current.thread_idx = next->tid;
#if defined(FOVEA_EMU_ASAN)
  if (finished) {
    // This frame never returns, so its red zones would stay poisoned on the stack, where the next block's
    // fiber puts other frames (AddressSanitizer then reports a bogus overflow there).
    char* frame = static_cast<char*>(__builtin_frame_address(0));
    char* below = std::max(w.stacks[f->linear].lo, frame - 8192);
    __asan_unpoison_memory_region(below, size_t(frame - below));
  }
  __sanitizer_start_switch_fiber(finished ? nullptr : &f->fake_stack, next ? stack_bottom(w, next) : w.scheduler_stack,
                                 next ? stack_bytes(w, next) : w.scheduler_stack_bytes);
  asan_arrived(w, f->fake_stack, switch_to(w, next, &f->context));
#else
  switch_to(w, next, &f->context);
#endif
}

// From a blocking call: returns when the fiber may go on; unwinds it when its block was aborted.
inline void yield(Worker& w, Fiber* f) {
  leave(w, f, false);
  if (w.aborting) throw ForcedUnwind{};
}

// Scheduler: runs one round, from w.order[w.pos] to w.order[w.count - 1].
inline void run_round(Worker& w) {
  Fiber* first = next_in_round(w);
  if (!first) return;
  w.cur = first;
  detail::current.thread_idx = first->tid;
#if defined(FOVEA_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_bottom(w, first), stack_bytes(w, first));
#endif
  switch_to(w, first, &w.scheduler);
  w.cur = nullptr;
#if defined(FOVEA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

inline void set_ready(Worker& w, int i) {
  w.ready[i >> 6] |= uint64_t(1) << (i & 63);
}

// ------------------------------------------------------------------ barrier
void release_barrier(Worker& w) {
  const int count = w.barrier_true, arrived = w.at_barrier;
  for (int k = 0; k < w.words; ++k) {
    uint64_t bits = w.barrier_bits[k];
    w.barrier_bits[k] = 0;
    w.ready[k] |= bits;
    while (bits) {
      Fiber& f = w.fibers[k * 64 + std::countr_zero(bits)];
      bits &= bits - 1;
      f.state = State::ready;
      switch (f.barrier_kind) {
        case detail::BarrierKind::sync: f.result = 0; break;
        case detail::BarrierKind::count: f.result = uint64_t(count); break;
        case detail::BarrierKind::all: f.result = count == arrived; break;
        case detail::BarrierKind::any: f.result = count > 0; break;
      }
    }
  }
  w.at_barrier = 0;
  w.barrier_true = 0;
  if (w.monitor) detail::block_barrier(w.monitor);
}

// ------------------------------------------------------------------ warp collectives
std::string hex(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int i = 0; i < 8; ++i) out += digits[(v >> (28 - 4 * i)) & 15];
  return out;
}

// "0-15,32-47": a set of thread or lane numbers.
template <class Has>
std::string ranges(int count, Has has) {
  std::string out;
  for (int i = 0; i < count;) {
    if (!has(i)) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < count && has(j + 1)) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(i);
    if (j > i) out += cat("-", j);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

bool is_shuffle(detail::WarpOp op) {
  return op == detail::WarpOp::shfl_idx || op == detail::WarpOp::shfl_up || op == detail::WarpOp::shfl_down ||
         op == detail::WarpOp::shfl_xor;
}

// The lane a shuffle reads, as the PTX ISA defines shfl.sync: CUDA passes c = ((32 - width) << 8) | 0x1f
// (0 for the clamp of shfl.up), so lanes are split into segments of `width` and a source outside the caller's
// segment (above it; below it for up) yields the caller's own value.
int shuffle_source(detail::WarpOp op, int lane, int arg, int width) {
  const int segmask = 32 - width;
  const int b = arg & 31;
  const int min_lane = lane & segmask;
  const int max_lane = min_lane | (31 & ~segmask);
  int j = lane;
  bool valid = true;
  switch (op) {
    case detail::WarpOp::shfl_up:
      j = lane - b;
      valid = j >= min_lane;
      break;
    case detail::WarpOp::shfl_down:
      j = lane + b;
      valid = j <= max_lane;
      break;
    case detail::WarpOp::shfl_xor:
      j = lane ^ b;
      valid = j <= max_lane;
      break;
    default:  // shfl_idx
      j = min_lane | (b & ~segmask);
      break;
  }
  return valid ? j : lane;
}

// Every live lane named in `need` waits in the same collective: compute each lane's result and release them.
void complete_collective(Worker& w, int warp, uint32_t need) {
  Fiber* lanes = &w.fibers[warp * 32];
  const int leader = std::countr_zero(need);
  const Fiber& L = lanes[leader];
  auto check_same_call = [&](const Fiber& f) {
    if (f.op != L.op)
      FOVEA_FAIL(L.fn, ": the lanes of warp ", warp, " named in mask ", hex(L.mask),
                 " must all make the same call, but lane ", leader, " calls ", L.fn, " and lane ", f.linear & 31,
                 " calls ", f.fn);
  };
  if (!is_shuffle(L.op))
    for (uint32_t m = need & (need - 1); m; m &= m - 1) check_same_call(lanes[std::countr_zero(m)]);
  uint64_t common = 0;
  switch (L.op) {
    case detail::WarpOp::ballot:
    case detail::WarpOp::any:
    case detail::WarpOp::all: {
      uint32_t ballot = 0;
      for (uint32_t m = need; m; m &= m - 1) {
        const int l = std::countr_zero(m);
        if (lanes[l].value) ballot |= 1u << l;
      }
      common = L.op == detail::WarpOp::ballot ? ballot : L.op == detail::WarpOp::any ? ballot != 0 : ballot == need;
      break;
    }
    case detail::WarpOp::reduce_add:
    case detail::WarpOp::reduce_min:
    case detail::WarpOp::reduce_max:
    case detail::WarpOp::reduce_umin:
    case detail::WarpOp::reduce_umax:
    case detail::WarpOp::reduce_and:
    case detail::WarpOp::reduce_or:
    case detail::WarpOp::reduce_xor: {
      uint32_t acc = uint32_t(L.value);
      for (uint32_t m = need & (need - 1); m; m &= m - 1) {
        const uint32_t v = uint32_t(lanes[std::countr_zero(m)].value);
        switch (L.op) {
          case detail::WarpOp::reduce_add: acc += v; break;
          case detail::WarpOp::reduce_min: acc = uint32_t(std::min(int32_t(acc), int32_t(v))); break;
          case detail::WarpOp::reduce_max: acc = uint32_t(std::max(int32_t(acc), int32_t(v))); break;
          case detail::WarpOp::reduce_umin: acc = std::min(acc, v); break;
          case detail::WarpOp::reduce_umax: acc = std::max(acc, v); break;
          case detail::WarpOp::reduce_and: acc &= v; break;
          case detail::WarpOp::reduce_or: acc |= v; break;
          default: acc ^= v; break;
        }
      }
      common = acc;
      break;
    }
    case detail::WarpOp::match_all: {
      bool all_equal = true;
      for (uint32_t m = need; m; m &= m - 1) all_equal &= lanes[std::countr_zero(m)].value == L.value;
      common = all_equal ? need : 0;
      break;
    }
    case detail::WarpOp::custom: {
      void* records[32] = {};
      const auto* lead = reinterpret_cast<const detail::WarpCustom*>(L.value);
      for (uint32_t m = need; m; m &= m - 1) {
        const int l = std::countr_zero(m);
        auto* r = reinterpret_cast<detail::WarpCustom*>(lanes[l].value);
        if (r->combine != lead->combine)
          FOVEA_FAIL(L.fn, ": the lanes of warp ", warp, " named in mask ", hex(L.mask),
                     " must all make the same call, but lane ", leader, " calls ", L.fn, " and lane ", l, " calls ",
                     lanes[l].fn);
        records[l] = r;
      }
      lead->combine(records, need);
      break;
    }
    default: break;
  }
  if (is_shuffle(L.op)) {
    // Check every source first: results are written only once all are valid.
    uint8_t source[32];
    for (uint32_t m = need; m; m &= m - 1) {
      const int l = std::countr_zero(m);
      Fiber& f = lanes[l];
      check_same_call(f);
      const int j = shuffle_source(f.op, l, f.arg, f.width);
      source[l] = uint8_t(j);
      if (j != l && !(need >> j & 1)) {
        const bool in_mask = f.mask >> j & 1;
        const bool exists = warp * 32 + j < w.n;
        FOVEA_FAIL(f.fn, ": lane ", l, " of warp ", warp, " reads lane ", j, ", which ",
                   !in_mask ? "is not in mask " + hex(f.mask)
                            : (exists ? std::string("has returned") : std::string("does not exist (partial warp)")),
                   "; a shuffle may only read lanes that take part in it");
      }
    }
    for (uint32_t m = need; m; m &= m - 1) {
      const int l = std::countr_zero(m);
      lanes[l].result = lanes[source[l]].value;
      lanes[l].state = State::ready;
    }
  } else if (L.op == detail::WarpOp::match_any) {
    for (uint32_t m = need; m; m &= m - 1) {
      Fiber& f = lanes[std::countr_zero(m)];
      uint32_t same = 0;
      for (uint32_t k = need; k; k &= k - 1) {
        const int l = std::countr_zero(k);
        if (lanes[l].value == f.value) same |= 1u << l;
      }
      f.result = same;
      f.state = State::ready;
    }
  } else {
    for (uint32_t m = need; m; m &= m - 1) {
      Fiber& f = lanes[std::countr_zero(m)];
      f.result = common;
      f.state = State::ready;
    }
  }
  w.ready[warp >> 1] |= uint64_t(need) << ((warp & 1) * 32);  // a warp is half a word of the bitmap
  w.waiting[warp] &= ~need;
  if (w.monitor && L.op == detail::WarpOp::sync) detail::block_warp_sync(w.monitor, warp, need);
}

// Completes the collective of `mask` in `warp` if every live lane it names has arrived.
inline void try_complete(Worker& w, int warp, uint32_t mask) {
  const uint32_t need = mask & w.live[warp];
  if (need != 0 && (w.waiting[warp] & need) == need) complete_collective(w, warp, need);
}

// ------------------------------------------------------------------ fiber entry and exit
void mark_done(Worker& w, Fiber* f) {
  f->state = State::done;
  ++w.done;
  w.live[f->linear >> 5] &= ~(1u << (f->linear & 31));
  w.waiting[f->linear >> 5] &= ~(1u << (f->linear & 31));
  w.barrier_bits[f->linear >> 6] &= ~(uint64_t(1) << (f->linear & 63));
}

// A returned thread no longer holds up its warp's collectives, nor a barrier in lenient mode.
void release_after_exit(Worker& w, Fiber* f) {
  if (w.lenient && w.at_barrier > 0 && w.at_barrier + w.done == w.n) release_barrier(w);
  const int warp = f->linear >> 5;
  for (uint32_t pending = w.waiting[warp]; pending; pending &= w.waiting[warp]) {
    const uint32_t mask = w.fibers[warp * 32 + std::countr_zero(pending)].mask;
    try_complete(w, warp, mask);
    pending &= ~mask;
  }
}

void fiber_entry(ctx::transfer_t t) {
  Worker& w = *static_cast<Worker*>(detail::current.worker);
  *static_cast<ctx::fcontext_t*>(t.data) = t.fctx;
#if defined(FOVEA_EMU_ASAN)
  asan_arrived(w, nullptr, t);
#endif
  Fiber* f = w.cur;
  // Exceptions never cross a context switch: everything thrown in the kernel is caught here, on this stack.
  try {
    if (!w.aborting) {
      w.launch->invoke(w.launch->body);
      mark_done(w, f);
      release_after_exit(w, f);
    }
  } catch (const ForcedUnwind&) {
  } catch (...) {
    if (!w.error) {
      w.error = std::current_exception();
      w.error_thread = f->linear;
    }
  }
  if (f->state != State::done) mark_done(w, f);
  leave(w, f, true);
  __builtin_unreachable();  // a finished fiber is never resumed: the next block makes a new context
}

// ------------------------------------------------------------------ the block scheduler
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string block_name(const Launch& L, uint3 b) {
  return cat("emu: kernel '", L.name, "' block (", b.x, ",", b.y, ",", b.z, ")");
}

std::string thread_note(const Launch& L) {
  return L.block.y * L.block.z > 1 ? " (threads numbered x + y*blockDim.x + z*blockDim.x*blockDim.y)" : "";
}

// Nothing can run and the block is unfinished: say what every thread waits for.
std::string describe_stuck(const Worker& w, const Launch& L, uint3 b) {
  auto in_state = [&](State s) { return [&w, s](int i) { return w.fibers[i].state == s; }; };
  bool any_warp = false;
  for (int i = 0; i < w.n; ++i) any_warp |= w.fibers[i].state == State::warp;
  const std::string waiting = ranges(w.n, in_state(State::barrier));
  const std::string returned = ranges(w.n, in_state(State::done));
  if (!any_warp) {
    return cat(block_name(L, b), ": barrier reached by only part of the block: threads ", returned,
               " returned while threads ", waiting, " wait at __syncthreads", thread_note(L),
               ". Every thread must reach every __syncthreads (FOVEA_EMU_LENIENT=1 counts returned threads as "
               "arrived)");
  }
  std::string out = cat(block_name(L, b), ": deadlock, no thread can proceed:");
  if (w.at_barrier > 0) out += cat(" threads ", waiting, " wait at __syncthreads (", w.at_barrier, " of ", w.n, ");");
  for (int warp = 0; warp * 32 < w.n; ++warp) {
    uint32_t pending = w.waiting[warp];
    while (pending) {
      const Fiber& f = w.fibers[warp * 32 + std::countr_zero(pending)];
      uint32_t group = 0;
      for (uint32_t m = pending; m; m &= m - 1) {
        const int l = std::countr_zero(m);
        if (w.fibers[warp * 32 + l].mask == f.mask) group |= 1u << l;
      }
      const uint32_t missing = f.mask & w.live[warp] & ~group;
      out += cat(" warp ", warp, " lanes ", ranges(32, [group](int l) { return (group >> l & 1) != 0; }), " wait in ",
                 f.fn, "(mask ", hex(f.mask), ") for lanes ",
                 ranges(32, [missing](int l) { return (missing >> l & 1) != 0; }), ";");
      pending &= ~group;
    }
  }
  if (w.done > 0) out += cat(" threads ", returned, " returned;");
  out.back() = '.';
  return out + thread_note(L);
}

void abort_block(Worker& w) {
  w.aborting = true;
  for (int i = 0; i < w.n; ++i)
    if (w.fibers[i].state != State::done) set_ready(w, i);
}

void run_block(Worker& w, Launch& L, uint64_t index) {
  const uint3 b{unsigned(index % L.grid.x), unsigned(index / L.grid.x % L.grid.y),
                unsigned(index / (uint64_t(L.grid.x) * L.grid.y))};
  detail::current.block_idx = b;
  ++detail::current.block_serial;
  const int n = L.threads;
  if (L.settings.poison && L.smem_bytes > 0) std::memset(w.dynamic_smem, 0xff, L.smem_bytes);

  for (int i = 0; i < n; ++i) {
    Fiber& f = w.fibers[i];
    f.state = State::ready;
    f.started = false;
    const Stack& st = w.stacks[i];
    f.context = ctx::make_fcontext(st.top, size_t(st.top - st.lo), fiber_entry);
#if defined(FOVEA_EMU_ASAN)
    f.fake_stack = nullptr;
#endif
  }
  std::fill_n(w.ready, w.words, 0);
  for (int i = 0; i < n; ++i) set_ready(w, i);
  std::fill_n(w.barrier_bits, w.words, 0);
  for (int warp = 0; warp * 32 < n; ++warp) {
    const int lanes = std::min(32, n - warp * 32);
    w.live[warp] = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    w.waiting[warp] = 0;
  }
  w.done = w.at_barrier = w.barrier_true = 0;
  w.aborting = false;
  w.error = nullptr;
  w.error_thread = -1;
  w.rng = L.settings.schedule.seed * 0x2545f4914f6cdd1dull + index;
  w.block_linear = index;
  if (w.monitor) detail::block_begin(w.monitor);

  std::string stuck;
  while (w.done < n) {
    // This block failed, or another one did: unwind every fiber.
    if (!w.aborting && (w.error || L.failed.load(std::memory_order_relaxed))) abort_block(w);
    int count = 0;
    for (int k = 0; k < w.words; ++k) {
      for (uint64_t bits = w.ready[k]; bits; bits &= bits - 1)
        w.order[count++] = uint16_t(k * 64 + std::countr_zero(bits));
      w.ready[k] = 0;
    }
    if (count == 0) {
      stuck = describe_stuck(w, L, b);
      abort_block(w);
      continue;
    }
    switch (L.settings.schedule.order) {
      case Order::forward: break;
      case Order::reverse: std::reverse(w.order, w.order + count); break;
      case Order::shuffle:
        for (int i = count - 1; i > 0; --i) std::swap(w.order[i], w.order[splitmix64(w.rng) % uint64_t(i + 1)]);
        break;
    }
    w.pos = 0;
    w.count = count;
    run_round(w);
  }

  if (w.monitor) detail::block_end(w.monitor);
  if (w.error) {
    const uint3 t = w.fibers[w.error_thread].tid;
    const std::string where = cat(block_name(L, b), " thread (", t.x, ",", t.y, ",", t.z, "): ");
    try {
      std::rethrow_exception(w.error);
    } catch (const std::exception& e) {
      L.fail(where + e.what());
    } catch (...) {
      L.fail(where + "a non-standard exception was thrown");
    }
    w.error = nullptr;
  } else if (!stuck.empty()) {
    L.fail(std::move(stuck));
  }
}

// ------------------------------------------------------------------ workers
// Per launch: stacks of the configured size for every thread of a block, the fibers' thread indices, the
// dynamic shared memory buffer (exact size).
void prepare(Worker& w, Launch& L) {
  if (w.stack_bytes != L.settings.stack_bytes) {
    w.release_stacks();
    w.stack_bytes = L.settings.stack_bytes;
  }
  while (int(w.stacks.size()) < L.threads) w.stacks.push_back(map_stack(w.stack_bytes, w.stacks.size()));
  const dim3 bd = L.block;
  if (w.fibers_for.x != bd.x || w.fibers_for.y != bd.y || w.fibers_for.z != bd.z) {
    for (int i = 0; i < L.threads; ++i) {
      Fiber& f = w.fibers[i];
      f.linear = uint16_t(i);
      f.tid = uint3{unsigned(i) % bd.x, unsigned(i) / bd.x % bd.y, unsigned(i) / (bd.x * bd.y)};
    }
    w.fibers_for = bd;
  }
  if (!w.has_dynamic_smem || w.dynamic_smem_bytes != L.smem_bytes) {
    w.free_dynamic_smem();
    w.dynamic_smem = ::operator new(L.smem_bytes, std::align_val_t(16));
    w.dynamic_smem_bytes = L.smem_bytes;
    w.has_dynamic_smem = true;
  }
  w.launch = &L;
  w.n = L.threads;
  w.words = (L.threads + 63) / 64;
  w.lenient = L.settings.lenient;
  w.printf_seq = 0;
  w.printf_lines.clear();
  w.monitor = nullptr;
  if (L.monitor) {
    std::vector<detail::StackRange> ranges(size_t(L.threads));
    for (int i = 0; i < L.threads; ++i) ranges[i] = {w.stacks[i].map, w.stacks[i].map + w.stacks[i].map_bytes};
    w.monitor = detail::worker_begin(L.monitor, ranges.data(), L.threads, w.dynamic_smem, L.smem_bytes);
  }
  detail::Current& c = detail::current;
  c.block_dim = L.block;
  c.grid_dim = L.grid;
  c.dynamic_smem = w.dynamic_smem;
  c.dynamic_smem_bytes = L.smem_bytes;
  c.worker = &w;
  c.monitor = w.monitor;
}

void run_worker(Launch& L) noexcept {
  Worker* wp = nullptr;
  try {
    wp = &this_worker();
    prepare(*wp, L);
    while (!L.failed.load(std::memory_order_relaxed)) {
      const uint64_t b = L.next.fetch_add(1, std::memory_order_relaxed);
      if (b >= L.blocks) break;
      run_block(*wp, L, b);
    }
  } catch (const std::exception& e) {
    L.fail(cat("emu: kernel '", L.name, "': ", e.what()));
  } catch (...) {
    L.fail(cat("emu: kernel '", L.name, "': unknown failure"));
  }
  detail::current.worker = nullptr;
  detail::current.monitor = nullptr;
  if (wp) {
    if (wp->monitor) {
      detail::worker_end(wp->monitor);
      wp->monitor = nullptr;
    }
    if (!wp->printf_lines.empty()) {
      std::lock_guard lock(L.error_mu);
      for (PrintfLine& line : wp->printf_lines) L.printf_lines.push_back(std::move(line));
      wp->printf_lines.clear();
    }
    wp->launch = nullptr;
    wp->cur = nullptr;
  }
}

// Threads that run blocks beside the launching thread. Idle threads sleep on a condition variable: spinning
// waits cost milliseconds per launch on a machine with few cores.
class Pool {
 public:
  void run(Launch& L, int helpers) {
    if (helpers > 0) {
      std::unique_lock lock(mu_);
      while (int(threads_.size()) < helpers) {
        const int index = int(threads_.size());
        threads_.emplace_back([this, index] { thread_main(index); });
      }
      job_ = &L;
      wanted_ = helpers;
      open_ = true;
      ++generation_;
      lock.unlock();
      work_cv_.notify_all();
    }
    run_worker(L);
    if (helpers > 0) {
      std::unique_lock lock(mu_);
      open_ = false;  // helpers that have not woken up yet stay out: the launch is over
      done_cv_.wait(lock, [this] { return running_ == 0; });
      job_ = nullptr;
    }
  }

  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void thread_main(int index) {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return stop_ || (open_ && generation_ != seen && index < wanted_); });
      if (stop_) return;
      seen = generation_;
      Launch* L = job_;
      ++running_;
      lock.unlock();
      run_worker(*L);
      lock.lock();
      if (--running_ == 0) done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  Launch* job_ = nullptr;
  uint64_t generation_ = 0;
  int wanted_ = 0;
  int running_ = 0;
  bool open_ = false;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

// ------------------------------------------------------------------ device-side entry points
namespace detail {

int block_barrier(BarrierKind kind, int predicate) {
  Worker& w = running_worker("__syncthreads");
  if (w.aborting) throw ForcedUnwind{};
  Fiber* f = w.cur;
  f->state = State::barrier;
  f->barrier_kind = kind;
  w.barrier_bits[f->linear >> 6] |= uint64_t(1) << (f->linear & 63);
  ++w.at_barrier;
  w.barrier_true += predicate != 0;
  if (w.at_barrier + (w.lenient ? w.done : 0) == w.n) release_barrier(w);
  yield(w, f);
  return int(f->result);
}

uint64_t warp_collective(WarpOp op, const char* fn, unsigned mask, uint64_t value, int arg, int width) {
  Worker& w = running_worker(fn);
  if (w.aborting) throw ForcedUnwind{};
  Fiber* f = w.cur;
  const int lane = f->linear & 31, warp = f->linear >> 5;
  const uint32_t me = 1u << lane;
  if (!(mask & me)) FOVEA_FAIL(fn, ": the calling lane ", lane, " (warp ", warp, ") is not in mask ", hex(mask));
  if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0))
    FOVEA_FAIL(fn, ": width must be a power of 2 in 1..32, got ", width);
  // Lanes already waiting must name the same mask wherever the two calls overlap. Those inside `mask` all share
  // one mask (checked as they arrived), so the lowest stands for them; outside it, one lane per group.
  Fiber* lanes = &w.fibers[warp * 32];
  const uint32_t waiting = w.waiting[warp];
  auto mismatch = [&](const Fiber& g) {
    FOVEA_FAIL(fn, ": lane ", lane, " of warp ", warp, " calls with mask ", hex(mask), " while lane ", g.linear & 31,
               " waits in ", g.fn, " with mask ", hex(g.mask),
               ": the lanes of one warp-synchronous call must all pass the same mask");
  };
  if (const uint32_t inside = waiting & mask; inside != 0 && lanes[std::countr_zero(inside)].mask != mask)
    mismatch(lanes[std::countr_zero(inside)]);
  for (uint32_t outside = waiting & ~mask; outside != 0;) {
    const Fiber& g = lanes[std::countr_zero(outside)];
    if (g.mask & me) mismatch(g);
    outside &= ~g.mask;
  }
  f->op = op;
  f->fn = fn;
  f->mask = mask;
  f->value = value;
  f->arg = arg;
  f->width = uint8_t(width);
  f->state = State::warp;
  w.waiting[warp] |= me;
  try_complete(w, warp, mask);
  yield(w, f);
  return f->result;
}

unsigned active_mask() {
  Worker& w = running_worker("__activemask");
  return w.live[w.cur->linear >> 5];
}

void device_trap(const char* what) {
  FOVEA_FAIL(what);
}

void device_printf(const char* text, size_t bytes) {
  Worker& w = running_worker("printf");
  const uint3 t = w.cur->tid;
  const dim3 bd = w.launch->block;
  w.printf_lines.push_back(
      PrintfLine{w.block_linear, t.x + bd.x * (t.y + bd.y * t.z), w.printf_seq++, std::string(text, bytes)});
}

namespace {
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), per kernel function.
std::mutex g_attr_mu;
std::map<const void*, int> g_max_dynamic_smem;

constexpr size_t kDefaultDynamicSmem = 48 * 1024;

// cudaDevAttrMaxSharedMemoryPerBlockOptin of each architecture (CUDA C++ Programming Guide, compute capabilities).
size_t max_dynamic_smem(int sm) {
  switch (sm) {
    case 700: return 96 * 1024;
    case 750: return 64 * 1024;
    case 800: return 163 * 1024;
    case 860:
    case 870:
    case 890: return 99 * 1024;
    case 900: return 227 * 1024;
    default: return 0;
  }
}

// Writes the launch's device printf lines in a fixed order, at most cudaLimitPrintfFifoSize's default of 1 MiB.
void flush_printf(Launch& L) {
  if (L.printf_lines.empty()) return;
  std::sort(L.printf_lines.begin(), L.printf_lines.end(), [](const PrintfLine& a, const PrintfLine& b) {
    return std::tie(a.block, a.thread, a.seq) < std::tie(b.block, b.thread, b.seq);
  });
  constexpr size_t kFifoBytes = size_t(1) << 20;
  size_t written = 0, dropped = 0;
  std::string out;
  for (const PrintfLine& line : L.printf_lines) {
    if (written + line.text.size() > kFifoBytes) {
      ++dropped;
      continue;
    }
    written += line.text.size();
    out += line.text;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  if (dropped)
    std::fprintf(stderr, "fovea emu: kernel '%s': %zu device printf calls dropped (more than 1 MiB in one launch)\n",
                 L.name, dropped);
  L.printf_lines.clear();
}

std::atomic<uint64_t> g_launches{0};
}  // namespace

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value, int sm) {
  if (kernel == nullptr) return cudaErrorInvalidDeviceFunction;
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
    return value >= -1 && value <= 100 ? cudaSuccess : cudaErrorInvalidValue;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  if (value < 0 || size_t(value) > max_dynamic_smem(sm ? sm : emu::arch())) return cudaErrorInvalidValue;
  std::lock_guard lock(g_attr_mu);
  g_max_dynamic_smem[kernel] = value;
  return cudaSuccess;
}

void launch(const LaunchSpec& spec, KernelBody invoke, const void* body, size_t body_bytes) {
  const char* name = spec.name;
  const dim3 grid = spec.grid, block = spec.block;
  const size_t smem_bytes = spec.smem_bytes;
  if (current.worker != nullptr)
    FOVEA_FAIL("emu: kernel '", name, "' launched from device code: dynamic parallelism is not emulated");
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  FOVEA_CHECK(threads >= 1 && threads <= uint64_t(kMaxThreads), "emu: launch of '", name, "': block (", block.x, ",",
              block.y, ",", block.z, ") has ", threads, " threads; must be 1..", kMaxThreads);
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  FOVEA_CHECK(blocks >= 1, "emu: launch of '", name, "': empty grid (", grid.x, ",", grid.y, ",", grid.z, ")");
  if (spec.kernel != nullptr && smem_bytes > kDefaultDynamicSmem) {
    // As on a GPU: above 48 KiB only with the kernel's opt-in, and never above the architecture's maximum.
    const int sm = spec.arch ? spec.arch : emu::arch();
    int opt_in = 0;
    {
      std::lock_guard lock(g_attr_mu);
      auto it = g_max_dynamic_smem.find(spec.kernel);
      if (it != g_max_dynamic_smem.end()) opt_in = it->second;
    }
    FOVEA_CHECK(smem_bytes <= max_dynamic_smem(sm), "emu: launch of '", name, "': ", smem_bytes,
                " bytes of dynamic shared memory exceed the ", max_dynamic_smem(sm) / 1024, " KiB of sm_", sm / 10,
                " (too many resources requested for launch)");
    FOVEA_CHECK(smem_bytes <= size_t(opt_in), "emu: launch of '", name, "': ", smem_bytes,
                " bytes of dynamic shared memory need cudaFuncSetAttribute(kernel, "
                "cudaFuncAttributeMaxDynamicSharedMemorySize, ",
                smem_bytes, ") first (",
                opt_in ? cat("the kernel opted in to ", opt_in, " bytes") : std::string("no opt-in"),
                "; 48 KiB is the limit without it; too many resources requested for launch)");
  }

  Launch L{.name = name,
           .grid = grid,
           .block = block,
           .smem_bytes = smem_bytes,
           .monitor = nullptr,
           .invoke = invoke,
           .body = body,
           .threads = int(threads),
           .blocks = blocks,
           .settings = launch_settings()};
  const int helpers = int(std::min<uint64_t>(uint64_t(L.settings.workers), blocks)) - 1;
  std::lock_guard lock(launch_mutex());  // one launch at a time: launches are synchronous anyway
  g_launches.fetch_add(1, std::memory_order_relaxed);
  L.monitor = monitor_begin(spec, body, body_bytes);
  try {
    pool().run(L, helpers);
  } catch (...) {
    if (L.monitor) monitor_discard(L.monitor);
    throw;
  }
  flush_printf(L);
  if (L.monitor) monitor_end(L.monitor, L.failed.load());
  if (L.failed.load()) throw DeviceError(L.error);
}

}  // namespace detail

void* extern_shared_memory() {
  if (detail::current.worker == nullptr)
    FOVEA_FAIL(
        "emu: an extern __shared__ array was used outside a kernel: declare it inside the kernel (a "
        "namespace-scope extern __shared__ declaration is not supported by the emulator)");
  return detail::current.dynamic_smem;
}

uint64_t launch_count() {
  return detail::g_launches.load(std::memory_order_relaxed);
}

}  // namespace fovea::emu
