// The instruction layer (kernels/mma.cuh, emulated by core/emu/tensor_core.cpp): mma.sync m16n8k8 TF32 and
// m16n8k16 BF16/FP16, ldmatrix x1/x2/x4 with and without .trans, cp.async 4/8/16 with zero fill, commit and
// wait_group, cvt.rna.tf32.f32.
//
// Layouts are checked twice, against two sources written down here independently of the emulator:
//   - the PTX ISA's fragment formulas (sections cited at each function below), transcribed literally;
//   - CuTe's thread-value layouts for the same instructions (include/cute/atom/mma_traits_sm80.hpp,
//     copy_traits_sm75.hpp in CUTLASS): (thread, value) -> index in a column-major tile, given by the shapes and
//     strides listed there, evaluated by a small layout evaluator of our own.
// Then the instructions run on every kernel device with index-encoded operands (distinct integers whose products
// and sums are exact, so any misplaced element changes a result bitwise), random operands (within a bound that
// holds for any order of the additions inside an mma), special values, and the emulator's error checks; a warp
// GEMM with a planted missing cp.async.wait_group and a planted wrong fragment index must fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/emu/emu.h"
#include "core/emu/tensor_core.h"
#include "core/float_formats.h"
#include "tests/kernel_test_util.h"
#include "tests/tensor_core_test_kernels.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using emu::Coord;
using emu::MmaKind;
using test::DeviceArray;

constexpr MmaKind kKinds[] = {MmaKind::m16n8k8_tf32, MmaKind::m16n8k16_bf16, MmaKind::m16n8k16_f16};

const char* kind_name(MmaKind k) {
  return k == MmaKind::m16n8k8_tf32 ? "tf32" : k == MmaKind::m16n8k16_bf16 ? "bf16" : "f16";
}
int a_elems(MmaKind k) {
  return k == MmaKind::m16n8k8_tf32 ? 4 : 8;
}
int b_elems(MmaKind k) {
  return a_elems(k) / 2;
}

// ------------------------------------------------------------------ source 1: the PTX ISA, literally
// groupID = %laneid >> 2, threadID_in_group = %laneid % 4 in every figure below.

// 9.7.14.5.7 "Matrix Fragments for mma.m16n8k8", .tf32, multiplicand A (Figure 72):
//   row = groupID for a0 and a2, groupID + 8 for a1 and a3; col = threadID_in_group for a0 and a1,
//   threadID_in_group + 4 for a2 and a3.
// 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating point type", .f16/.bf16, multiplicand A
// (Figure 79): row = groupID for ai where 0 <= i < 2 || 4 <= i < 6, groupID + 8 otherwise;
//   col = (threadID_in_group * 2) + (i & 0x1) for ai where i < 4, + 8 for ai where i >= 4.
Coord ptx_a(MmaKind k, int laneid, int i) {
  const int groupID = laneid >> 2, threadID_in_group = laneid % 4;
  if (k == MmaKind::m16n8k8_tf32)
    return {(i == 0 || i == 2) ? groupID : groupID + 8, (i == 0 || i == 1) ? threadID_in_group : threadID_in_group + 4};
  const int row = ((0 <= i && i < 2) || (4 <= i && i < 6)) ? groupID : groupID + 8;
  const int col = i < 4 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8;
  return {row, col};
}
// 9.7.14.5.7, .tf32, multiplicand B (Figure 74): row = threadID_in_group for b0, threadID_in_group + 4 for b1;
//   col = groupID.
// 9.7.14.5.8, .f16/.bf16, multiplicand B (Figure 81): row = (threadID_in_group * 2) + (i & 0x1) for bi where
//   i < 2, + 8 for bi where i >= 2; col = groupID.
// (row, col) of B are (k, n).
Coord ptx_b(MmaKind k, int laneid, int i) {
  const int groupID = laneid >> 2, threadID_in_group = laneid % 4;
  if (k == MmaKind::m16n8k8_tf32) return {i == 0 ? threadID_in_group : threadID_in_group + 4, groupID};
  return {i < 2 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8, groupID};
}
// Accumulators C/D with .f32 (Figures 75 and 83, same formulas for both shapes): row = groupID for c0 and c1,
//   groupID + 8 for c2 and c3; col = (threadID_in_group * 2) + (i & 0x1).
Coord ptx_c(int laneid, int i) {
  const int groupID = laneid >> 2, threadID_in_group = laneid % 4;
  return {(i == 0 || i == 1) ? groupID : groupID + 8, (threadID_in_group * 2) + (i & 0x1)};
}
// 9.7.14.5.15 "ldmatrix": each 8x8 matrix of 16-bit elements; threads 0-7 give the row addresses of the first
// matrix, 8-15 of the second, ... Without .trans, a thread's register for a matrix holds two consecutive
// elements of one row: row laneid / 4, columns 2 * (laneid % 4) and + 1 (the figure "ldmatrix fragment layout
// for one 8x8 matrix"); .trans delivers the matrix transposed: the element at (row, col) is taken from
// (col, row).
Coord ptx_ldmatrix(bool trans, int laneid, int i) {
  const Coord plain{laneid / 4, 2 * (laneid % 4) + i};
  return trans ? Coord{plain.col, plain.row} : plain;
}

// ------------------------------------------------------------------ source 2: CuTe's thread-value layouts
// A layout maps (thread, value) to an index: each coordinate is split over its modes colexicographically (first
// mode fastest) and index = sum of mode coordinate * stride. MMA tiles are column-major: A (M x K) index
// m + M k, B (N x K) n + N k, C (M x N) m + M n.
struct Mode {
  int shape, stride;
};
int evaluate(const std::vector<Mode>& modes, int x) {
  int index = 0;
  for (const Mode& m : modes) index += (x % m.shape) * m.stride, x /= m.shape;
  return index;
}
struct TvLayout {
  std::vector<Mode> thread, value;
  int index(int t, int v) const { return evaluate(thread, t) + evaluate(value, v); }
};

// mma_traits_sm80.hpp: SM80_16x8x8_F32TF32TF32F32_TN and SM80_16x8x16_F32{BF16BF16,F16F16}F32_TN (the latter
// inherit SM80_16x8x16_F16F16F16F16_TN's layouts); CLayout = SM80_16x8_Row for all three.
TvLayout cute_a(MmaKind k) {
  if (k == MmaKind::m16n8k8_tf32) return {{{4, 16}, {8, 1}}, {{2, 8}, {2, 64}}};
  return {{{4, 32}, {8, 1}}, {{2, 16}, {2, 8}, {2, 128}}};
}
TvLayout cute_b(MmaKind k) {
  if (k == MmaKind::m16n8k8_tf32) return {{{4, 8}, {8, 1}}, {{2, 32}}};
  return {{{4, 16}, {8, 1}}, {{2, 8}, {2, 64}}};
}
const TvLayout kCuteC{{{4, 32}, {8, 1}}, {{2, 16}, {2, 8}}};

// copy_traits_sm75.hpp: DstLayouts of SM75_U32x{1,2,4}_LDSM_N and SM75_U16x{2,4,8}_LDSM_T, in bits: bit index
// 1024 matrix + 128 row + 16 column + bit. Value v = bit + 16 element + 32 register.
TvLayout cute_ldsm(int num, bool trans) {
  if (!trans) {
    TvLayout l{{{32, 32}}, {{32, 1}}};
    if (num > 1) l.value.push_back({num, 1024});
    return l;
  }
  TvLayout l{{{4, 256}, {8, 16}}, {{16, 1}, {2, 128}}};
  if (num > 1) l.value.push_back({num, 1024});
  return l;
}

TEST(TensorCoreLayout, MmaFragmentsMatchPtxIsaAndCute) {
  for (MmaKind k : kKinds) {
    const int K = emu::mma_k(k);
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < a_elems(k); ++i) {
        const Coord emu = emu::mma_a_coord(k, lane, i), ptx = ptx_a(k, lane, i);
        const int idx = cute_a(k).index(lane, i);
        EXPECT_EQ(emu, ptx) << kind_name(k) << " A lane " << lane << " a" << i;
        EXPECT_EQ(emu, (Coord{idx % 16, idx / 16})) << kind_name(k) << " A lane " << lane << " a" << i << " (CuTe)";
      }
      for (int i = 0; i < b_elems(k); ++i) {
        const Coord emu = emu::mma_b_coord(k, lane, i), ptx = ptx_b(k, lane, i);
        const int idx = cute_b(k).index(lane, i);
        EXPECT_EQ(emu, ptx) << kind_name(k) << " B lane " << lane << " b" << i;
        EXPECT_EQ(emu, (Coord{idx / 8, idx % 8})) << kind_name(k) << " B lane " << lane << " b" << i << " (CuTe)";
        EXPECT_LT(emu.row, K);
      }
    }
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const int idx = kCuteC.index(lane, i);
      EXPECT_EQ(emu::mma_c_coord(lane, i), ptx_c(lane, i)) << "C lane " << lane << " c" << i;
      EXPECT_EQ(emu::mma_c_coord(lane, i), (Coord{idx % 16, idx / 16})) << "C lane " << lane << " c" << i << " (CuTe)";
    }
  // Every element of every matrix is held exactly once.
  for (MmaKind k : kKinds) {
    std::vector<int> a(16 * 16), b(16 * 8), c(16 * 8);
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < a_elems(k); ++i)
        ++a[emu::mma_a_coord(k, lane, i).row * 16 + emu::mma_a_coord(k, lane, i).col];
      for (int i = 0; i < b_elems(k); ++i) ++b[emu::mma_b_coord(k, lane, i).row * 8 + emu::mma_b_coord(k, lane, i).col];
      for (int i = 0; i < 4; ++i) ++c[emu::mma_c_coord(lane, i).row * 8 + emu::mma_c_coord(lane, i).col];
    }
    const int K = emu::mma_k(k);
    for (int m = 0; m < 16; ++m)
      for (int kk = 0; kk < 16; ++kk) EXPECT_EQ(a[m * 16 + kk], kk < K ? 1 : 0) << kind_name(k);
    for (int kk = 0; kk < 16; ++kk)
      for (int n = 0; n < 8; ++n) EXPECT_EQ(b[kk * 8 + n], kk < K ? 1 : 0) << kind_name(k);
    for (int x : c) EXPECT_EQ(x, 1);
  }
}

TEST(TensorCoreLayout, LdmatrixMatchesPtxIsaAndCute) {
  for (bool trans : {false, true})
    for (int num : {1, 2, 4})
      for (int lane = 0; lane < 32; ++lane)
        for (int j = 0; j < num; ++j)
          for (int i = 0; i < 2; ++i) {
            const Coord emu = emu::ldmatrix_coord(trans, lane, i);
            EXPECT_EQ(emu, ptx_ldmatrix(trans, lane, i)) << "trans " << trans << " lane " << lane << " element " << i;
            const int bit = cute_ldsm(num, trans).index(lane, 16 * i + 32 * j);
            EXPECT_EQ(bit / 1024, j);
            EXPECT_EQ(emu, (Coord{bit % 1024 / 128, bit % 128 / 16}))
                << "x" << num << " trans " << trans << " lane " << lane << " register " << j << " element " << i
                << " (CuTe)";
          }
}

// ------------------------------------------------------------------ mma on the devices
// Matrices in the orientation of the PTX figures: A[m][k] (16 x K), B[k][n] (K x 8), C[m][n] (16 x 8).
struct MmaProblem {
  MmaKind kind;
  std::vector<float> A, B, C;  // values exactly representable in the operand format (TF32 may carry extra bits)
};

uint16_t to_bits16(MmaKind k, float x) {
  return k == MmaKind::m16n8k16_bf16 ? float_to_bf16_bits(x) : float_to_half_bits(x);
}

// Fragments of every lane of every problem, placed by the PTX formulas above (not by the emulator's).
void to_fragments(const std::vector<MmaProblem>& ps, std::vector<uint32_t>& a, std::vector<uint32_t>& b,
                  std::vector<float>& c) {
  a.assign(ps.size() * 32 * 4, 0), b.assign(ps.size() * 32 * 2, 0), c.assign(ps.size() * 32 * 4, 0);
  for (size_t w = 0; w < ps.size(); ++w) {
    const MmaProblem& p = ps[w];
    const int K = emu::mma_k(p.kind);
    for (int lane = 0; lane < 32; ++lane) {
      uint32_t* ar = &a[(w * 32 + lane) * 4];
      uint32_t* br = &b[(w * 32 + lane) * 2];
      for (int i = 0; i < a_elems(p.kind); ++i) {
        const Coord x = ptx_a(p.kind, lane, i);
        const float v = p.A[x.row * K + x.col];
        if (p.kind == MmaKind::m16n8k8_tf32)
          ar[i] = std::bit_cast<uint32_t>(v);
        else
          ar[i / 2] |= uint32_t(to_bits16(p.kind, v)) << (16 * (i % 2));
      }
      for (int i = 0; i < b_elems(p.kind); ++i) {
        const Coord x = ptx_b(p.kind, lane, i);
        const float v = p.B[x.row * 8 + x.col];
        if (p.kind == MmaKind::m16n8k8_tf32)
          br[i] = std::bit_cast<uint32_t>(v);
        else
          br[i / 2] |= uint32_t(to_bits16(p.kind, v)) << (16 * (i % 2));
      }
      for (int i = 0; i < 4; ++i) {
        const Coord x = ptx_c(lane, i);
        c[(w * 32 + lane) * 4 + i] = p.C[x.row * 8 + x.col];
      }
    }
  }
}

// Runs every problem (all of one kind) on dev; returns D[m][n] per problem, read back through the PTX layout.
std::vector<std::vector<float>> run_mma(Device dev, const std::vector<MmaProblem>& ps) {
  std::vector<uint32_t> a, b;
  std::vector<float> c;
  to_fragments(ps, a, b, c);
  const auto da = DeviceArray<uint32_t>::upload(a, dev), db = DeviceArray<uint32_t>::upload(b, dev);
  const auto dc = DeviceArray<float>::upload(c, dev);
  DeviceArray<float> dd(c.size(), dev);
  dd.poison();
  test::tc_test_mma_stub(test::kernel_exec(dev), int(ps[0].kind), int(ps.size()), da.data(), db.data(), dc.data(),
                         dd.data());
  const std::vector<float> d = dd.download();
  std::vector<std::vector<float>> out(ps.size(), std::vector<float>(128));
  for (size_t w = 0; w < ps.size(); ++w)
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < 4; ++i) {
        const Coord x = ptx_c(lane, i);
        out[w][x.row * 8 + x.col] = d[(w * 32 + lane) * 4 + i];
      }
  return out;
}

// Exact D = A B + C in double, and sum |a b| + |c| per element (for the any-order bound). TF32 operands as the
// hardware reads them (top 19 bits).
void exact_mma(const MmaProblem& p, std::vector<double>& d, std::vector<double>& mag) {
  const int K = emu::mma_k(p.kind);
  auto op = [&](float x) {
    return p.kind == MmaKind::m16n8k8_tf32 ? double(tf32_operand(std::bit_cast<uint32_t>(x))) : double(x);
  };
  d.assign(128, 0), mag.assign(128, 0);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double s = p.C[m * 8 + n], a = std::fabs(s);
      for (int k = 0; k < K; ++k) {
        const double t = op(p.A[m * K + k]) * op(p.B[k * 8 + n]);
        s += t, a += std::fabs(t);
      }
      d[m * 8 + n] = s, mag[m * 8 + n] = a;
    }
}

std::string where(int m, int n) {
  // Which lane and register hold D[m][n], by the PTX formula: lane = 4 groupID + threadID_in_group.
  const int lane = 4 * (m % 8) + n / 2, reg = 2 * (m / 8) + n % 2;
  return "D[" + std::to_string(m) + "][" + std::to_string(n) + "] (lane " + std::to_string(lane) + " d" +
         std::to_string(reg) + ")";
}

class TensorCore : public ::testing::TestWithParam<Device> {};

// Distinct integers as operands: every product and sum is exact in FP32 whatever the order, so D must equal the
// exact result bitwise, and an element taken from the wrong place changes it.
TEST_P(TensorCore, MmaIndexEncodedOperandsExact) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  std::mt19937_64 rng(5);
  for (MmaKind k : kKinds) {
    const int K = emu::mma_k(k);
    std::vector<MmaProblem> ps;
    for (int w = 0; w < 4; ++w) {
      MmaProblem p{k, {}, {}, {}};
      std::vector<int> ia(16 * K), ib(K * 8);
      std::iota(ia.begin(), ia.end(), -16 * K / 2);  // 16K distinct values, |v| <= 128: exact in BF16
      std::iota(ib.begin(), ib.end(), 1 - 4 * K);
      std::shuffle(ia.begin(), ia.end(), rng), std::shuffle(ib.begin(), ib.end(), rng);
      for (int v : ia) p.A.push_back(float(v));
      for (int v : ib) p.B.push_back(float(v));
      for (int i = 0; i < 128; ++i) p.C.push_back(float(int(rng() % 2001) - 1000));
      ps.push_back(p);
    }
    const auto got = run_mma(GetParam(), ps);
    for (size_t w = 0; w < ps.size(); ++w) {
      std::vector<double> want, mag;
      exact_mma(ps[w], want, mag);
      int bad = 0;
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n)
          if (double(got[w][m * 8 + n]) != want[m * 8 + n] && bad++ < 6)
            ADD_FAILURE() << kind_name(k) << " warp " << w << " " << where(m, n) << ": got " << got[w][m * 8 + n]
                          << " want " << want[m * 8 + n];
      EXPECT_EQ(bad, 0) << kind_name(k) << " warp " << w;
    }
  }
}

// Random operands over a range of magnitudes: within 2 (K + 1) u sum|terms| of the exact result (u = 2^-24),
// the error bound of K + 1 additions in FP32 in any order, rounding or truncating.
TEST_P(TensorCore, MmaRandomOperandsWithinAnyOrderBound) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> scale(-6, 6);
  for (MmaKind k : kKinds) {
    const int K = emu::mma_k(k);
    std::vector<MmaProblem> ps;
    for (int w = 0; w < 8; ++w) {
      MmaProblem p{k, {}, {}, {}};
      auto operand = [&] {
        return round_operand(k == MmaKind::m16n8k8_tf32    ? Precision::tf32
                             : k == MmaKind::m16n8k16_bf16 ? Precision::bf16
                                                           : Precision::fp16,
                             std::ldexp(unit(rng), scale(rng)));
      };
      for (int i = 0; i < 16 * K; ++i) p.A.push_back(operand());
      for (int i = 0; i < K * 8; ++i) p.B.push_back(operand());
      for (int i = 0; i < 128; ++i) p.C.push_back(std::ldexp(unit(rng), scale(rng)));
      ps.push_back(p);
    }
    const auto got = run_mma(GetParam(), ps);
    for (size_t w = 0; w < ps.size(); ++w) {
      std::vector<double> want, mag;
      exact_mma(ps[w], want, mag);
      for (int e = 0; e < 128; ++e) {
        const double bound = 2.0 * (K + 1) * std::ldexp(1.0, -24) * mag[e];
        EXPECT_LE(std::fabs(double(got[w][e]) - want[e]), bound)
            << kind_name(k) << " warp " << w << " " << where(e / 8, e % 8) << ": got " << got[w][e] << " want "
            << want[e];
      }
    }
  }
}

// Infinities and NaN propagate as in IEEE arithmetic; subnormal 16-bit inputs are used, not flushed.
TEST_P(TensorCore, MmaSpecialValues) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  for (MmaKind k : kKinds) {
    const int K = emu::mma_k(k);
    MmaProblem p{k, std::vector<float>(16 * K, 0.0f), std::vector<float>(K * 8, 1.0f), std::vector<float>(128, 0.0f)};
    p.A[0 * K + 0] = INFINITY;  // row 0: inf * 1 = inf, but inf * 0 = NaN in column 3
    p.B[0 * 8 + 3] = 0.0f;
    p.A[1 * K + 2] = std::nanf("");  // row 1: NaN everywhere
    p.C[2 * 8 + 5] = -INFINITY;      // D[2][5] = -inf
    // Row 3: a subnormal 16-bit input (TF32: a small normal float) times 1024 gives a normal float.
    const float tiny = k == MmaKind::m16n8k16_f16    ? std::ldexp(1.0f, -24)
                       : k == MmaKind::m16n8k16_bf16 ? std::ldexp(1.0f, -130)
                                                     : std::ldexp(1.0f, -100);
    p.A[3 * K + 1] = tiny;
    for (int n = 0; n < 8; ++n) p.B[1 * 8 + n] = 1024.0f;
    const auto d = run_mma(GetParam(), {p})[0];
    for (int n = 0; n < 8; ++n) {
      if (n == 3) {
        EXPECT_TRUE(std::isnan(d[n])) << kind_name(k) << " inf * 0";
      } else {
        EXPECT_EQ(d[n], INFINITY) << kind_name(k) << " " << where(0, n);
      }
      EXPECT_TRUE(std::isnan(d[8 + n])) << kind_name(k) << " " << where(1, n);
      EXPECT_EQ(d[3 * 8 + n], tiny * 1024.0f) << kind_name(k) << " " << where(3, n);
    }
    EXPECT_EQ(d[2 * 8 + 5], -INFINITY) << kind_name(k);
    EXPECT_EQ(d[4 * 8 + 0], 0.0f) << kind_name(k);
  }
}

// .tf32 operands are read from the top 19 bits of the register: a value between two TF32 numbers is truncated,
// not rounded (kernels round with cvt.rna.tf32.f32 first).
TEST_P(TensorCore, MmaTf32ReadsTopNineteenBits) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  MmaProblem p{MmaKind::m16n8k8_tf32, std::vector<float>(16 * 8, 0.0f), std::vector<float>(8 * 8, 0.0f),
               std::vector<float>(128, 0.0f)};
  const float above = 1.0f + 0.75f * std::ldexp(1.0f, -10);  // rounds up to 1 + 2^-10, truncates to 1
  for (int m = 0; m < 16; ++m) p.A[m * 8 + m % 8] = above;
  for (int n = 0; n < 8; ++n) p.B[n * 8 + n] = 1.0f;
  const auto d = run_mma(GetParam(), {p})[0];
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) EXPECT_EQ(d[m * 8 + n], m % 8 == n ? 1.0f : 0.0f) << where(m, n);
}

// ------------------------------------------------------------------ ldmatrix
TEST_P(TensorCore, LdmatrixEveryForm) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  std::vector<uint16_t> src(32 * 8);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint16_t(0x1000 + i);  // element (row r, col c) = 0x1000 + 8r + c
  std::vector<int> rows(32);
  std::iota(rows.begin(), rows.end(), 0);
  std::shuffle(rows.begin(), rows.end(), std::mt19937_64(3));  // rows anywhere, in any order
  const auto dsrc = DeviceArray<uint16_t>::upload(src, dev);
  const auto drows = DeviceArray<int>::upload(rows, dev);
  for (bool trans : {false, true})
    for (int num : {1, 2, 4}) {
      DeviceArray<uint32_t> out(32 * 4, dev);
      out.poison();
      test::tc_test_ldmatrix_stub(test::kernel_exec(dev), num, trans, dsrc.data(), drows.data(), 0, out.data());
      const std::vector<uint32_t> got = out.download();
      for (int lane = 0; lane < 32; ++lane)
        for (int j = 0; j < num; ++j)
          for (int i = 0; i < 2; ++i) {
            const Coord x = ptx_ldmatrix(trans, lane, i);  // (row, col) within matrix j
            const int smem_row = rows[8 * j + x.row];      // lane 8j + row gave this row's address
            const uint16_t want = src[smem_row * 8 + x.col];
            const uint16_t have = uint16_t(got[lane * 4 + j] >> (16 * i));
            EXPECT_EQ(have, want) << "x" << num << (trans ? ".trans" : "") << " lane " << lane << " register " << j
                                  << " element " << i;
          }
    }
}

// ------------------------------------------------------------------ cp.async
TEST_P(TensorCore, CpAsyncZeroFillsPastSrcSize) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  std::vector<uint8_t> src(31 * 16);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(1 + i % 251);
  const auto dsrc = DeviceArray<uint8_t>::upload(src, dev);
  DeviceArray<uint8_t> out(src.size(), dev);
  out.poison();
  test::tc_test_cp_async_sizes_stub(test::kernel_exec(dev), dsrc.data(), out.data());
  const std::vector<uint8_t> got = out.download();
  for (int t = 0; t < 31; ++t) {
    const int cp = t < 5 ? 4 : t < 14 ? 8 : 16, n = t < 5 ? t : t < 14 ? t - 5 : t - 14;
    for (int i = 0; i < 16; ++i) {
      const uint8_t want = i < n ? src[16 * t + i] : i < cp ? 0 : 0xab;
      EXPECT_EQ(got[16 * t + i], want) << "cp-size " << cp << " src-size " << n << " byte " << i;
    }
  }
}

// Groups complete in order at the wait that covers them; until then the emulator shows poison (0xFF bytes).
TEST_P(TensorCore, CpAsyncGroupsCompleteAtTheirWait) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<float> src = {1.5f, 2.5f, 3.5f, 4.5f};
  const auto dsrc = DeviceArray<float>::upload(src, dev);
  DeviceArray<float> out(20, dev);
  out.poison();
  test::tc_test_cp_async_groups_stub(test::kernel_exec(dev), dsrc.data(), out.data());
  const std::vector<float> got = out.download();
  const uint32_t poison = 0xffffffffu;
  // Snapshot s, destination i: the value once its group is complete; the GPU may also have it earlier.
  const bool done[5][4] = {{0, 0, 0, 0}, {1, 0, 0, 0}, {1, 1, 0, 0}, {1, 1, 1, 0}, {1, 1, 1, 1}};
  for (int s = 0; s < 5; ++s)
    for (int i = 0; i < 4; ++i) {
      const float g = got[4 * s + i];
      if (done[s][i]) {
        EXPECT_EQ(g, src[i]) << "snapshot " << s << " destination " << i;
      } else if (dev.type == DeviceType::emu) {
        EXPECT_EQ(std::bit_cast<uint32_t>(g), poison) << "snapshot " << s << " destination " << i << ": not yet due";
      }
    }
}

TEST_P(TensorCore, CvtRnaTf32) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  std::vector<float> x;
  for (uint32_t i = 0; i < 200000; ++i) {
    uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
    x.push_back(std::bit_cast<float>(uint32_t(z >> 32)));
  }
  for (uint32_t b : {0x3f801000u, 0xbf801000u, 0x7f7ff000u, 0x7f800000u, 0x7f800001u, 0xffc00001u, 0x00001000u})
    x.push_back(std::bit_cast<float>(b));
  const auto dx = DeviceArray<float>::upload(x, dev);
  DeviceArray<uint32_t> y(x.size(), dev);
  test::tc_test_cvt_rna_stub(test::kernel_exec(dev), dx.data(), y.data(), int(x.size()));
  const std::vector<uint32_t> got = y.download();
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (got[i] != float_to_tf32_bits(x[i]) && bad++ < 5)
      ADD_FAILURE() << "cvt.rna.tf32.f32 " << std::hex << std::bit_cast<uint32_t>(x[i]) << " -> " << got[i];
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Devices, TensorCore, test::KernelDevices(), test::DeviceName);

// ------------------------------------------------------------------ the emulator's checks and planted bugs
// BF16 operands for the warp GEMM: D = A B^T, A 16 x K, B 8 x K.
struct WarpGemm {
  int K;
  std::vector<uint16_t> A, B;
  std::vector<double> want;
  explicit WarpGemm(int k) : K(k) {
    std::mt19937_64 rng{uint64_t(k)};
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int i = 0; i < 16 * K; ++i) A.push_back(float_to_bf16_bits(u(rng)));
    for (int i = 0; i < 8 * K; ++i) B.push_back(float_to_bf16_bits(u(rng)));
    want.assign(128, 0.0);
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 8; ++n)
        for (int kk = 0; kk < K; ++kk)
          want[m * 8 + n] += double(bf16_bits_to_float(A[m * K + kk])) * double(bf16_bits_to_float(B[n * K + kk]));
  }
  std::vector<float> run(TcPlantedBug bug) const {
    const auto a = DeviceArray<uint16_t>::upload(A, kEmu), b = DeviceArray<uint16_t>::upload(B, kEmu);
    DeviceArray<float> d(128, kEmu);
    d.poison();
    test::tc_test_warp_gemm_stub(test::kernel_exec(kEmu), bug, a.data(), b.data(), d.data(), K);
    return d.download();
  }
};

const char* const kSchedules[] = {"forward", "reverse", "shuffle:1", "shuffle:2"};

TEST(TensorCoreEmu, PlantedBugsAreDetected) {
  const WarpGemm g(64);
  for (const char* order : kSchedules) {
    emu::ScopedSchedule schedule(order);
    EXPECT_TRUE(test::close_l2(g.run(TcPlantedBug::none), g.want, 1e-5, std::string("correct warp GEMM, ") + order));
    const std::vector<float> no_wait = g.run(TcPlantedBug::missing_wait);
    EXPECT_TRUE(std::any_of(no_wait.begin(), no_wait.end(), [](float x) { return std::isnan(x); }))
        << "a missing cp.async.wait_group must read poison (" << order << ")";
    EXPECT_FALSE(test::close_l2(g.run(TcPlantedBug::wrong_fragment_index), g.want, 1e-2, ""))
        << "a wrong fragment index must give a wrong product (" << order << ")";
  }
}

TEST(TensorCoreEmu, MmaNeedsTheWholeWarp) {
  DeviceArray<float> d(32, kEmu);
  EXPECT_TRUE(test::throws_error([&] { test::tc_test_mma_partial_warp_stub(test::kernel_exec(kEmu), d.data()); },
                                 {"mma.sync", "every lane of the warp", "16,17"}));
}

TEST(TensorCoreEmu, LdmatrixRowsMustBeAligned) {
  std::vector<uint16_t> src(32 * 8, 1);
  std::vector<int> rows(32);
  std::iota(rows.begin(), rows.end(), 0);
  const auto dsrc = DeviceArray<uint16_t>::upload(src, kEmu);
  const auto drows = DeviceArray<int>::upload(rows, kEmu);
  DeviceArray<uint32_t> out(128, kEmu);
  EXPECT_TRUE(test::throws_error(
      [&] { test::tc_test_ldmatrix_stub(test::kernel_exec(kEmu), 4, false, dsrc.data(), drows.data(), 2, out.data()); },
      {"ldmatrix", "lane 3", "not 16-byte aligned"}));
  EXPECT_TRUE(test::throws_error(
      [&] { test::tc_test_ldmatrix_stub(test::kernel_exec(kEmu), 1, true, dsrc.data(), drows.data(), 2, out.data()); },
      {"ldmatrix", "lane 3"}));
}

TEST(TensorCoreEmu, CpAsyncChecksItsOperands) {
  const auto src = DeviceArray<float>::upload(std::vector<float>(8, 1.0f), kEmu);
  DeviceArray<float> out(1, kEmu);
  EXPECT_TRUE(test::throws_error(
      [&] { test::tc_test_cp_async_misuse_stub(test::kernel_exec(kEmu), 0, src.data(), out.data()); },
      {"cp.async", "not aligned to cp-size 16"}));
  EXPECT_TRUE(test::throws_error(
      [&] { test::tc_test_cp_async_misuse_stub(test::kernel_exec(kEmu), 1, src.data(), out.data()); },
      {"cp.async", "src-size 17"}));
}

// A copy its thread never waited for does not land in the next block's shared memory.
TEST(TensorCoreEmu, CpAsyncPendingCopiesDieWithTheirBlock) {
  emu::ScopedWorkers one(1);  // both blocks on the same worker thread, one after the other
  const auto src = DeviceArray<float>::upload({3.0f, 3.0f, 3.0f, 3.0f}, kEmu);
  DeviceArray<float> out(1, kEmu);
  test::tc_test_cp_async_abandoned_stub(test::kernel_exec(kEmu), src.data(), out.data());
  EXPECT_EQ(out.download()[0], 7.0f);
}

}  // namespace
}  // namespace fovea
