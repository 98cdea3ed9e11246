// The emulator's tensor-core and asynchronous-copy instructions: mma.sync, ldmatrix, cp.async. Kernels reach them
// through kernels/mma.cuh, which is inline PTX under nvcc and calls these under the emulator.
//
// mma.sync and ldmatrix are warp collectives (detail::warp_custom): the last lane to arrive gathers every lane's
// fragment registers exactly as the PTX ISA's fragment figures place them (the layout functions below), computes,
// and scatters the results the same way. Both are .aligned: all 32 lanes of the warp must execute them (a lane
// that returned, or a partial warp, is an error here; on a GPU it is undefined behaviour).
//
// mma.sync: products are exact, and each element of D is c + the sum of its K products, computed in double and
// rounded once to float. The one difference from the hardware that cannot be removed: the GPU adds the products
// in an order and with internal precision that NVIDIA does not document (measured on A100/H100: aligned to the
// largest exponent and truncated). Results agree to a few float ulps of the sum of |terms|; tests compare with
// tolerances that hold for any order, never bitwise. .tf32 operands: the hardware reads the top 19 bits of the
// register, and so does the emulator (kernels round with cvt.rna first). NaN results are not canonicalised.
//
// cp.async: a copy is issued into the thread's open batch; commit_group closes the batch into a group;
// wait_group(N) completes every committed group but the N most recent. Until its group completes, a copy's
// destination holds poison (0xFF bytes: NaN as float, FP16 and BF16), so a kernel that reads too early, or
// never waits, reads garbage here instead of passing by luck. The source is read when the copy is issued. Copies
// still pending when the block ends never land. Sizes and alignments are checked as PTX requires.
#pragma once
#include <cstdint>

namespace fovea::emu {

enum class MmaKind : uint8_t {
  m16n8k8_tf32,   // mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
  m16n8k16_bf16,  // mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
  m16n8k16_f16,   // mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
};
constexpr int mma_k(MmaKind k) {
  return k == MmaKind::m16n8k8_tf32 ? 8 : 16;
}

// ------------------------------------------------------------------ fragment layouts (PTX ISA 9.7.14.5.7, .8)
// Which element of a matrix a lane holds: element i of the lane's fragment, in the order of the PTX figures
// ("a0, a1, ..."; two 16-bit elements per 32-bit register, the lower-numbered in the low half).
struct Coord {
  int row, col;
  friend constexpr bool operator==(Coord, Coord) = default;
};

// A is M x K = 16 x K, row major. tf32: 4 elements (one per register); bf16/f16: 8 (two per register).
constexpr Coord mma_a_coord(MmaKind k, int lane, int i) {
  const int group = lane >> 2, tig = lane & 3;  // groupID, threadID_in_group
  if (k == MmaKind::m16n8k8_tf32) return {group + 8 * (i & 1), tig + 4 * (i >> 1)};
  return {group + 8 * ((i >> 1) & 1), 2 * tig + (i & 1) + 8 * (i >> 2)};
}
// B is K x N = K x 8, "col" (element (k, n) of lane g = n). tf32: 2 elements; bf16/f16: 4.
constexpr Coord mma_b_coord(MmaKind k, int lane, int i) {
  const int group = lane >> 2, tig = lane & 3;
  if (k == MmaKind::m16n8k8_tf32) return {tig + 4 * i, group};
  return {2 * tig + (i & 1) + 8 * (i >> 1), group};
}
// C and D are 16 x 8 floats, 4 per lane, the same for every kind.
constexpr Coord mma_c_coord(int lane, int i) {
  return {(lane >> 2) + 8 * (i >> 1), 2 * (lane & 3) + (i & 1)};
}
// ldmatrix .m8n8 .b16 (PTX ISA 9.7.14.5.15): element i (0: low half, 1: high half) of a lane's register for one
// 8 x 8 matrix, as (row, column) of that matrix, whose row r is read from the address lane 8 * matrix + r gave.
constexpr Coord ldmatrix_coord(bool trans, int lane, int i) {
  return trans ? Coord{2 * (lane & 3) + i, lane >> 2} : Coord{lane >> 2, 2 * (lane & 3) + i};
}

// ------------------------------------------------------------------ instructions (core/emu/tensor_core.cpp)
// d = a * b + c for one warp; a, b, c, d are the calling lane's fragment registers (d may alias c).
void mma_sync(MmaKind kind, float* d, const uint32_t* a, const uint32_t* b, const float* c);
// Warp-level mma.sync executed by this process so far (every kind, every launch): tests read the difference around a
// launch to check a kernel's mma count against its cost model.
uint64_t mma_sync_count();
// ldmatrix.sync.aligned.m8n8.x{num}{.trans}.shared.b16: d[0..num) of the calling lane. Lanes 0..8*num-1 give
// the row addresses (16-byte aligned); the other lanes' addresses are ignored.
void ldmatrix(int num, bool trans, uint32_t* d, const void* row_address);
// cp.async.{ca,cg}.shared.global [dst], [src], cp_size, src_size: src_size bytes of src, then zeros.
void cp_async(void* dst, const void* src, int cp_size, int src_size);
void cp_async_commit_group();
void cp_async_wait_group(int n);
void cp_async_wait_all();  // cp.async.wait_all: commit, then wait for everything

}  // namespace fovea::emu
