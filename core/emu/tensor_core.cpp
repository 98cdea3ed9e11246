// mma.sync, ldmatrix and cp.async for the emulator (see tensor_core.h).
#include "core/emu/tensor_core.h"

#include <atomic>
#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "core/emu/emu.h"
#include "core/error.h"
#include "core/float_formats.h"

namespace fovea::emu {
namespace {

std::atomic<uint64_t> warp_mma_count{0};  // mma_sync_count()

constexpr uint32_t kFullWarp = 0xffffffffu;

const char* mma_name(MmaKind k) {
  switch (k) {
    case MmaKind::m16n8k8_tf32: return "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32";
    case MmaKind::m16n8k16_bf16: return "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";
    case MmaKind::m16n8k16_f16: return "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32";
  }
  return "mma.sync";
}

// Lanes that must take part in an .aligned instruction but did not (returned, or beyond a partial warp).
void require_full_warp(const char* fn, uint32_t lanes) {
  if (lanes == kFullWarp) return;
  std::string missing;
  for (int l = 0; l < 32; ++l)
    if (!(lanes >> l & 1)) {
      if (!missing.empty()) missing += ',';
      missing += std::to_string(l);
    }
  FOVEA_FAIL(fn, ": every lane of the warp must execute this .aligned instruction, but lanes ", missing,
             " returned or do not exist (partial warp)");
}

// ------------------------------------------------------------------ mma.sync
struct MmaRecord {
  detail::WarpCustom head;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
  float* d;
};

// Element i of a lane's A or B fragment registers, as the exact value it stands for.
template <MmaKind kKind>
double operand(const uint32_t* regs, int i) {
  if constexpr (kKind == MmaKind::m16n8k8_tf32) {
    return double(tf32_operand(regs[i]));
  } else {
    const uint16_t h = uint16_t(regs[i >> 1] >> (16 * (i & 1)));
    return double(kKind == MmaKind::m16n8k16_bf16 ? bf16_bits_to_float(h) : half_bits_to_float(h));
  }
}

template <MmaKind kKind>
void mma_combine(void* const records[32], uint32_t lanes) {
  require_full_warp(mma_name(kKind), lanes);
  warp_mma_count.fetch_add(1, std::memory_order_relaxed);
  constexpr int K = mma_k(kKind), kA = kKind == MmaKind::m16n8k8_tf32 ? 4 : 8, kB = kA / 2;
  double A[16][K], B[K][8];
  float C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const auto* r = static_cast<const MmaRecord*>(records[lane]);
    for (int i = 0; i < kA; ++i) {
      const Coord x = mma_a_coord(kKind, lane, i);
      A[x.row][x.col] = operand<kKind>(r->a, i);
    }
    for (int i = 0; i < kB; ++i) {
      const Coord x = mma_b_coord(kKind, lane, i);
      B[x.row][x.col] = operand<kKind>(r->b, i);
    }
    for (int i = 0; i < 4; ++i) {
      const Coord x = mma_c_coord(lane, i);
      C[x.row][x.col] = r->c[i];
    }
  }
  // Every input is read before any output is written: d may alias c.
  for (int lane = 0; lane < 32; ++lane) {
    auto* r = static_cast<MmaRecord*>(records[lane]);
    for (int i = 0; i < 4; ++i) {
      const Coord x = mma_c_coord(lane, i);
      double acc = double(C[x.row][x.col]);
      for (int k = 0; k < K; ++k) acc += A[x.row][k] * B[k][x.col];  // products exact in double
      r->d[i] = float(acc);
    }
  }
}

// ------------------------------------------------------------------ ldmatrix
struct LdmatrixRecord {
  detail::WarpCustom head;
  const void* address;
  uint32_t* d;
};

template <int kNum, bool kTrans>
void ldmatrix_combine(void* const records[32], uint32_t lanes) {
  const char* fn = kTrans ? "ldmatrix.sync.aligned.m8n8.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.shared.b16";
  require_full_warp(fn, lanes);
  uint16_t M[kNum][8][8];
  for (int j = 0; j < kNum; ++j)
    for (int row = 0; row < 8; ++row) {
      const int lane = 8 * j + row;
      const void* p = static_cast<const LdmatrixRecord*>(records[lane])->address;
      if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
        FOVEA_FAIL(fn, " .x", kNum, ": lane ", lane, " gives row ", row, " of matrix ", j, " at ", p,
                   ", which is not 16-byte aligned");
      std::memcpy(M[j][row], p, 16);
    }
  for (int lane = 0; lane < 32; ++lane) {
    auto* r = static_cast<LdmatrixRecord*>(records[lane]);
    for (int j = 0; j < kNum; ++j) {
      const Coord lo = ldmatrix_coord(kTrans, lane, 0), hi = ldmatrix_coord(kTrans, lane, 1);
      r->d[j] = uint32_t(M[j][lo.row][lo.col]) | (uint32_t(M[j][hi.row][hi.col]) << 16);
    }
  }
}

template <int kNum, bool kTrans>
void run_ldmatrix(uint32_t* d, const void* row_address) {
  LdmatrixRecord r{{&ldmatrix_combine<kNum, kTrans>}, row_address, d};
  detail::warp_custom(kTrans ? "ldmatrix.trans" : "ldmatrix", kFullWarp, &r.head);
}

// ------------------------------------------------------------------ cp.async
struct PendingCopy {
  void* dst;
  uint8_t bytes[16];
  int size;
};
struct ThreadCopies {
  std::vector<PendingCopy> open;                 // issued, not yet committed
  std::vector<std::vector<PendingCopy>> groups;  // committed, oldest first
};
// The copies of the block running on this OS thread, per CUDA thread; reset when a new block starts.
struct BlockCopies {
  uint64_t serial = ~uint64_t(0);
  std::vector<ThreadCopies> threads;
  std::vector<uint8_t> touched;  // per thread: used cp.async in this block (listed in `used`)
  std::vector<int> used;
};
thread_local BlockCopies t_copies;

ThreadCopies& my_copies(const char* fn) {
  const detail::Current& c = detail::current;
  if (c.worker == nullptr) FOVEA_FAIL(fn, " called outside a kernel running on the emulator");
  BlockCopies& b = t_copies;
  if (b.serial != c.block_serial) {  // a new block: what the last one left pending never lands
    for (int t : b.used) b.threads[size_t(t)] = ThreadCopies{}, b.touched[size_t(t)] = 0;
    b.used.clear();
    b.serial = c.block_serial;
  }
  const size_t linear =
      c.thread_idx.x + size_t(c.block_dim.x) * (c.thread_idx.y + size_t(c.block_dim.y) * c.thread_idx.z);
  if (b.threads.size() <= linear) b.threads.resize(linear + 1), b.touched.resize(linear + 1);
  if (!b.touched[linear]) b.touched[linear] = 1, b.used.push_back(int(linear));
  return b.threads[linear];
}

void complete(const std::vector<PendingCopy>& group) {
  for (const PendingCopy& p : group) std::memcpy(p.dst, p.bytes, size_t(p.size));
}

}  // namespace

void mma_sync(MmaKind kind, float* d, const uint32_t* a, const uint32_t* b, const float* c) {
  MmaRecord r{{nullptr}, a, b, c, d};
  switch (kind) {
    case MmaKind::m16n8k8_tf32: r.head.combine = &mma_combine<MmaKind::m16n8k8_tf32>; break;
    case MmaKind::m16n8k16_bf16: r.head.combine = &mma_combine<MmaKind::m16n8k16_bf16>; break;
    case MmaKind::m16n8k16_f16: r.head.combine = &mma_combine<MmaKind::m16n8k16_f16>; break;
  }
  detail::warp_custom(mma_name(kind), kFullWarp, &r.head);
}

void ldmatrix(int num, bool trans, uint32_t* d, const void* row_address) {
  switch (num * 2 + (trans ? 1 : 0)) {
    case 2: run_ldmatrix<1, false>(d, row_address); break;
    case 3: run_ldmatrix<1, true>(d, row_address); break;
    case 4: run_ldmatrix<2, false>(d, row_address); break;
    case 5: run_ldmatrix<2, true>(d, row_address); break;
    case 8: run_ldmatrix<4, false>(d, row_address); break;
    case 9: run_ldmatrix<4, true>(d, row_address); break;
    default: FOVEA_FAIL("ldmatrix: .x", num, " is not one of .x1, .x2, .x4");
  }
}

void cp_async(void* dst, const void* src, int cp_size, int src_size) {
  const char* fn = "cp.async";
  if (cp_size != 4 && cp_size != 8 && cp_size != 16) FOVEA_FAIL(fn, ": cp-size ", cp_size, " is not 4, 8 or 16");
  if (src_size < 0 || src_size > cp_size)
    FOVEA_FAIL(fn, ": src-size ", src_size, " must be in [0, cp-size = ", cp_size, "]");
  if (reinterpret_cast<uintptr_t>(dst) % unsigned(cp_size) != 0)
    FOVEA_FAIL(fn, ": the shared destination ", dst, " is not aligned to cp-size ", cp_size);
  if (src_size > 0 && reinterpret_cast<uintptr_t>(src) % unsigned(cp_size) != 0)
    FOVEA_FAIL(fn, ": the global source ", src, " is not aligned to cp-size ", cp_size);
  ThreadCopies& t = my_copies(fn);
  PendingCopy p{dst, {}, cp_size};
  if (src_size > 0) std::memcpy(p.bytes, src, size_t(src_size));  // the rest stays zero (zero fill)
  std::memset(dst, 0xff, size_t(cp_size));                        // poison until the copy's group completes
  t.open.push_back(p);
}

void cp_async_commit_group() {
  ThreadCopies& t = my_copies("cp.async.commit_group");
  t.groups.push_back(std::move(t.open));  // an empty group is allowed, as in PTX
  t.open.clear();
}

void cp_async_wait_group(int n) {
  if (n < 0) FOVEA_FAIL("cp.async.wait_group: N must be >= 0, got ", n);
  ThreadCopies& t = my_copies("cp.async.wait_group");
  size_t done = 0;
  while (t.groups.size() - done > size_t(n)) complete(t.groups[done++]);
  t.groups.erase(t.groups.begin(), t.groups.begin() + std::ptrdiff_t(done));
}

void cp_async_wait_all() {
  cp_async_commit_group();
  cp_async_wait_group(0);
}

uint64_t mma_sync_count() {
  return warp_mma_count.load(std::memory_order_relaxed);
}

}  // namespace fovea::emu
