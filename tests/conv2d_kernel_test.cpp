// Convolution kernels (kernels/conv2d*.cu): every version (direct, implicit_gemm, im2col_gemm) of the
// forward pass, the data gradient and the weight gradient, plus the bias gradient, im2col/col2im and the
// implicit-GEMM dgrad's weight copy (its layout, and the coalescing it buys on the emulator's memory metrics),
// against cpu_reference on random inputs over the shared edge-case shapes (layers/ops/conv_shapes.h) and
// small-batch CIFAR layers (full batch with FOVEA_TEST_FULL=1), on every kernel device. Outputs are
// NaN-poisoned before each launch and must be fully written; relative L2 error <= 1e-5.
// Determinism: repeated runs, every implicit-GEMM tile and split, aligned vs misaligned (scalar)
// paths and, on the emulator, every schedule order must give the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/emu/emu.h"
#include "core/emu/profile.h"
#include "core/error.h"
#include "cpu_reference/conv2d.h"
#include "kernels/conv2d.h"
#include "layers/ops/conv_shapes.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using shapes::ConvShape;
using test::DeviceArray;

constexpr double kTol = 1e-5;
constexpr ConvOp kOps[] = {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter};
constexpr ConvAlgo kAlgos[] = {ConvAlgo::direct, ConvAlgo::implicit_gemm, ConvAlgo::im2col_gemm};

bool full_tests() {
  const char* e = std::getenv("FOVEA_TEST_FULL");
  return e && std::string(e) == "1";
}

const char* short_op(ConvOp op) {
  return op == ConvOp::forward ? "fprop" : op == ConvOp::backward_data ? "dgrad" : "wgrad";
}

// The edge-case list, then the CIFAR layers at batch 2 (their own batch with FOVEA_TEST_FULL=1).
std::vector<ConvShape> test_shapes() {
  std::vector<ConvShape> v = shapes::conv_edge_shapes();
  for (ConvShape s : shapes::conv_cifar_shapes()) {
    if (!full_tests()) {
      s.p.N = 2;
      s.name += "_as_n2";
    }
    v.push_back(s);
  }
  return v;
}
// A shape of test_shapes() by name; CIFAR names without their "_as_n2" suffix.
const ConvShape& shape_named(const std::string& name) {
  static const std::vector<ConvShape> shapes = test_shapes();
  for (const ConvShape& s : shapes)
    if (s.name == name || s.name == name + "_as_n2") return s;
  throw Error("no conv test shape named " + name);
}

// Random inputs of one shape and the reference outputs.
struct ConvData {
  Conv2dParams p;
  std::vector<float> x, w, b, dy;
  std::vector<float> y, dx, dw;  // reference
  explicit ConvData(const Conv2dParams& pp, uint64_t seed = 1) : p(pp) {
    x = test::random_vector(p.x_size(), seed * 4 + 1);
    w = test::random_vector(p.w_size(), seed * 4 + 2);
    b = test::random_vector(p.K, seed * 4 + 3);
    dy = test::random_vector(p.y_size(), seed * 4 + 4);
    y.resize(p.y_size()), dx.resize(p.x_size()), dw.resize(p.w_size());
    ref::conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
    ref::conv2d_backward_data(p, dy.data(), w.data(), dx.data());
    ref::conv2d_backward_filter(p, x.data(), dy.data(), dw.data());
  }
  const std::vector<float>& expected(ConvOp op) const {
    return op == ConvOp::forward ? y : op == ConvOp::backward_data ? dx : dw;
  }
};

// A device copy of a host vector that starts `offset` floats into its allocation (offset 1 makes
// the data 4 bytes off 16-byte alignment, forcing the scalar paths).
struct DeviceCopy {
  DeviceArray<float> storage;
  size_t offset = 0, n = 0;
  DeviceCopy(const std::vector<float>& host, Device dev, size_t off = 0)
      : storage(host.size() + off + 1, dev), offset(off), n(host.size()) {
    storage.poison();
    copy_bytes(data(), dev, host.data(), kCPU, n * sizeof(float));
  }
  DeviceCopy(size_t count, Device dev, size_t off = 0) : storage(count + off + 1, dev), offset(off), n(count) {
    storage.poison();
  }
  float* data() const { return storage.data() + offset; }
  void poison() { storage.poison(); }
  std::vector<float> download() const {
    std::vector<float> h(n);
    copy_bytes(h.data(), kCPU, data(), storage.device(), n * sizeof(float));
    return h;
  }
};

// How one op is launched: by algorithm through the dispatcher, or the implicit GEMM with a plan.
struct Launch {
  ConvAlgo algo = ConvAlgo::implicit_gemm;
  bool forced_plan = false;
  ConvGemmPlan plan;
  size_t offset = 0;  // misalign every tensor by this many floats
};

size_t workspace_bytes(const Launch& l, ConvOp op, const Conv2dParams& p) {
  if (l.forced_plan) return conv2d_igemm_workspace_bytes(op, p, l.plan);
  return conv2d_workspace_bytes(l.algo, op, p);
}

// Runs one op on `dev` with poisoned output and workspace (exactly the bytes the version needs); returns the output.
std::vector<float> run_op(Device dev, ConvOp op, const ConvData& d, const Launch& l) {
  const Conv2dParams& p = d.p;
  const size_t ws_bytes = workspace_bytes(l, op, p);
  DeviceCopy ws(ws_bytes / sizeof(float) + 1, dev, l.offset);
  Workspace scratch(dev, ws.data(), ws_bytes);
  const Exec ex = test::kernel_exec(dev, &scratch);
  const ConvConfig cfg{l.forced_plan ? ConvAlgo::implicit_gemm : l.algo, l.forced_plan ? l.plan : ConvGemmPlan{}};
  if (op == ConvOp::forward) {
    DeviceCopy x(d.x, dev, l.offset), w(d.w, dev, l.offset), b(d.b, dev, l.offset), y(d.y.size(), dev, l.offset);
    ops::conv2d_forward_stub(ex, cfg, p, x.data(), w.data(), b.data(), y.data());
    return y.download();
  }
  if (op == ConvOp::backward_data) {
    DeviceCopy dy(d.dy, dev, l.offset), w(d.w, dev, l.offset), dx(d.dx.size(), dev, l.offset);
    ops::conv2d_backward_data_stub(ex, cfg, p, dy.data(), w.data(), dx.data());
    return dx.download();
  }
  DeviceCopy x(d.x, dev, l.offset), dy(d.dy, dev, l.offset), dw(d.dw.size(), dev, l.offset);
  ops::conv2d_backward_filter_stub(ex, cfg, p, x.data(), dy.data(), dw.data());
  return dw.download();
}

double max_abs_error(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

// Fully written, within tolerance of the reference; appends "op rel=.. max|err|=.." to `report`.
::testing::AssertionResult matches(const std::vector<float>& got, const std::vector<float>& want,
                                   const std::string& what, std::string* report = nullptr) {
  ::testing::AssertionResult written = test::all_written(got, what.c_str());
  if (!written) return written;
  if (report) {
    char line[160];
    std::snprintf(line, sizeof line, " %s rel=%.2e max|err|=%.2e", what.c_str(), test::rel_l2(got, want),
                  max_abs_error(got, want));
    *report += line;
  }
  return test::close_l2(got, want, kTol, what);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---------------------------------------------------------------- every version x every shape

struct ConvCase {
  Device dev;
  ConvAlgo algo;
  ConvShape shape;
};
// Every version on every shape, for the devices of test::KernelDevices().
std::vector<ConvCase> all_cases() {
  std::vector<ConvCase> v;
  for (Device dev : {kEmu, kCUDA})
    for (ConvAlgo a : kAlgos)
      for (const ConvShape& s : test_shapes()) v.push_back({dev, a, s});
  return v;
}
std::string case_label(const ConvCase& c) {
  return std::string(c.dev.type == DeviceType::emu ? "emu" : "cuda") + "_" + conv_algo_name(c.algo) + "_" +
         c.shape.name;
}
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << case_label(c) << " " << c.shape.p.str();
}

class ConvKernel : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvKernel, MatchesReference) {
  const ConvCase& c = GetParam();
  const Device dev = c.dev;
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const ConvData d(c.shape.p);
  Launch l;
  l.algo = c.algo;
  std::string report;
  for (ConvOp op : kOps) {
    const std::vector<float> got = run_op(dev, op, d, l);
    EXPECT_TRUE(matches(got, d.expected(op), short_op(op), &report)) << c.shape.p.str();
    // The default algorithm twice: bitwise the same (the others are covered by the schedule test).
    if (c.algo == ConvAlgo::implicit_gemm) {
      EXPECT_TRUE(same_bits(got, run_op(dev, op, d, l))) << short_op(op);
    }
  }
  std::printf("[ %s %s %s ]%s\n", dev.str().c_str(), conv_algo_name(c.algo), c.shape.name.c_str(), report.c_str());
}

INSTANTIATE_TEST_SUITE_P(Devices, ConvKernel, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) { return case_label(info.param); });

// ---------------------------------------------------------------- implicit GEMM: every tile, split-K

class ConvDevice : public ::testing::TestWithParam<Device> {};

// Each tile shape and split count must match the reference; tiles with the same split count sum
// every output in the same order, so they must agree bit for bit.
TEST_P(ConvDevice, ImplicitGemmEveryTileAndSplit) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const char* name : {"channels_33_k_65", "n3_channels_17", "groups4_stride2", "mixed_anisotropic_groups2",
                           "pointwise_1x1", "dilation2_stride2", "cifar_32to64_16x16_s2_n64"}) {
    const ConvData d(shape_named(name).p, 7);
    for (ConvOp op : kOps) {
      for (int64_t splits : {1, 3}) {
        std::vector<float> first;
        for (const auto& t : kConvGemmTiles) {
          Launch l;
          l.forced_plan = true;
          l.plan.bm = t[0], l.plan.bn = t[1], l.plan.splits = splits;
          const std::string what = std::string(name) + " " + short_op(op) + " tile " + std::to_string(t[0]) + "x" +
                                   std::to_string(t[1]) + " splits " + std::to_string(splits);
          const std::vector<float> got = run_op(dev, op, d, l);
          EXPECT_TRUE(matches(got, d.expected(op), what));
          if (first.empty()) {
            first = got;
          } else {
            EXPECT_TRUE(same_bits(first, got))
                << what << " differs in bits from tile " << kConvGemmTiles[0][0] << "x" << kConvGemmTiles[0][1];
          }
        }
      }
    }
  }
}

// The 16-byte paths (1x1 stride-1 input/dy, weights, wgrad's dy, output stores) and the scalar paths
// they fall back to when the tensors are not 16-byte aligned give the same bits.
TEST_P(ConvDevice, VectorAndScalarPathsAgree) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<Conv2dParams> shapes = {shapes::conv_params(2, 8, 8, 8, 12, 1, 1),
                                            shapes::conv_params(2, 4, 8, 8, 8, 3, 3, 1, 1),
                                            shapes::conv_params(3, 16, 6, 10, 24, 1, 1, 1, 0, 1, 2)};
  for (const Conv2dParams& p : shapes) {
    const ConvData d(p, 11);
    for (ConvAlgo algo : kAlgos)
      for (ConvOp op : kOps) {
        Launch aligned, misaligned;
        aligned.algo = misaligned.algo = algo;
        misaligned.offset = 1;
        const std::string what = p.str() + " " + conv_algo_name(algo) + " " + short_op(op);
        const std::vector<float> a = run_op(dev, op, d, aligned), m = run_op(dev, op, d, misaligned);
        EXPECT_TRUE(matches(a, d.expected(op), what + " aligned"));
        EXPECT_TRUE(matches(m, d.expected(op), what + " misaligned"));
        EXPECT_TRUE(same_bits(a, m)) << what << ": aligned and misaligned runs differ";
      }
  }
}

TEST_P(ConvDevice, BiasGradientMatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const ConvShape& s : test_shapes()) {
    const Conv2dParams& p = s.p;
    const std::vector<float> dy = test::random_vector(p.y_size(), 21);
    std::vector<float> want(p.K);
    ref::conv2d_backward_bias(p, dy.data(), want.data());
    DeviceCopy ddy(dy, dev), db(size_t(p.K), dev);
    ops::conv2d_backward_bias_stub(test::kernel_exec(dev), p, ddy.data(), db.data());
    const std::vector<float> got = db.download();
    EXPECT_TRUE(matches(got, want, s.name + " db"));
    db.poison();
    ops::conv2d_backward_bias_stub(test::kernel_exec(dev), p, ddy.data(), db.data());
    EXPECT_TRUE(same_bits(got, db.download())) << s.name;
  }
}

TEST_P(ConvDevice, Im2colAndCol2imMatchReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const ConvShape& s : shapes::conv_edge_shapes()) {
    const Conv2dParams& p = s.p;
    const int64_t rows = ref::im2col_rows(p), cols = ref::im2col_cols(p), image = p.C * p.H * p.W;
    const std::vector<float> x = test::random_vector(image, 31), col = test::random_vector(rows * cols, 32);
    std::vector<float> want_col(rows * cols), want_x(image);
    ref::im2col(p, x.data(), want_col.data());
    ref::col2im(p, col.data(), want_x.data());
    DeviceCopy dx(x, dev), dcol(col, dev), out_col(size_t(rows * cols), dev), out_x(size_t(image), dev);
    ops::im2col_stub(test::kernel_exec(dev), p, dx.data(), out_col.data());
    ops::col2im_stub(test::kernel_exec(dev), p, dcol.data(), out_x.data());
    const std::vector<float> got_col = out_col.download(), got_x = out_x.download();
    EXPECT_TRUE(test::all_written(got_col, "col"));
    EXPECT_TRUE(same_bits(got_col, want_col)) << s.name << ": im2col copies values, so must match exactly";
    EXPECT_TRUE(matches(got_x, want_x, s.name + " col2im"));
  }
}

// With an ordinary Workspace the versions size and take the scratch memory themselves.
TEST_P(ConvDevice, GrowingWorkspace) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const ConvData d(shape_named("cifar_16to32_32x32_n64").p, 5);
  Workspace ws(dev);
  for (ConvAlgo algo : kAlgos) {
    DeviceCopy x(d.x, dev), w(d.w, dev), b(d.b, dev), dy(d.dy, dev);
    DeviceCopy y(d.y.size(), dev), dx(d.dx.size(), dev), dw(d.dw.size(), dev);
    const Exec ex = test::kernel_exec(dev, &ws);
    ops::conv2d_forward_stub(ex, {algo, {}}, d.p, x.data(), w.data(), b.data(), y.data());
    ops::conv2d_backward_data_stub(ex, {algo, {}}, d.p, dy.data(), w.data(), dx.data());
    ops::conv2d_backward_filter_stub(ex, {algo, {}}, d.p, x.data(), dy.data(), dw.data());
    EXPECT_TRUE(matches(y.download(), d.y, std::string(conv_algo_name(algo)) + " fprop"));
    EXPECT_TRUE(matches(dx.download(), d.dx, std::string(conv_algo_name(algo)) + " dgrad"));
    EXPECT_TRUE(matches(dw.download(), d.dw, std::string(conv_algo_name(algo)) + " wgrad"));
  }
}

// ---------------------------------------------------------------- bad launches

TEST_P(ConvDevice, BadLaunchesFailClearly) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const Conv2dParams p = shapes::conv_params(2, 4, 8, 8, 6, 3, 3, 1, 1);
  const ConvData d(p, 3);
  DeviceCopy x(d.x, dev), w(d.w, dev), dy(d.dy, dev), y(d.y.size(), dev), dx(d.dx.size(), dev), dw(d.dw.size(), dev);

  // Geometry the op cannot take: every version validates before launching.
  Conv2dParams bad = p;
  bad.groups = 4, bad.K = 6;  // 6 output channels in 4 groups
  for (ConvAlgo algo : kAlgos) {
    EXPECT_TRUE(test::throws_error(
        [&] {
          ops::conv2d_forward_stub(test::kernel_exec(dev), {algo, {}}, bad, x.data(), w.data(), nullptr, y.data());
        },
        {"conv2d_forward", "argument 'groups'=4", "does not divide output channels K=6"}))
        << conv_algo_name(algo);
    EXPECT_TRUE(test::throws_error(
        [&] {
          ops::conv2d_backward_data_stub(test::kernel_exec(dev), {algo, {}}, p, nullptr, w.data(), dx.data());
        },
        {"conv2d_backward_data", "argument 'dy' is null"}))
        << conv_algo_name(algo);
  }
  // A tile that has no kernel.
  ConvGemmPlan odd;
  odd.bm = 48, odd.bn = 48;
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_forward_stub(test::kernel_exec(dev), {ConvAlgo::implicit_gemm, odd}, p, x.data(), w.data(), nullptr,
                                 y.data());
      },
      {"conv2d_forward_implicit_gemm", "48", "not one of the tiles"}));
  // Split-K without (enough) workspace.
  ConvGemmPlan split;
  split.bm = 32, split.bn = 64, split.splits = 4;
  const size_t need = conv2d_igemm_workspace_bytes(ConvOp::backward_filter, p, split);
  ASSERT_GT(need, 0u);
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_backward_filter_stub(test::kernel_exec(dev), {ConvAlgo::implicit_gemm, split}, p, x.data(),
                                         dy.data(), dw.data());
      },
      {"conv2d_backward_filter_implicit_gemm", "workspace"}));
  DeviceCopy small(need / sizeof(float) / 2, dev);
  Workspace too_small(dev, small.data(), need / 2);
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_backward_filter_stub(test::kernel_exec(dev, &too_small), {ConvAlgo::implicit_gemm, split}, p,
                                         x.data(), dy.data(), dw.data());
      },
      {"conv2d_backward_filter_implicit_gemm", "workspace", std::to_string(need / 2)}));
  // im2col's column buffer.
  EXPECT_TRUE(test::throws_error(
      [&] {
        Workspace tiny(dev, small.data(), 16);
        ops::conv2d_forward_stub(test::kernel_exec(dev, &tiny), {ConvAlgo::im2col_gemm, {}}, p, x.data(), w.data(),
                                 nullptr, y.data());
      },
      {"conv2d_forward_im2col", "workspace", "16"}));
  // Tensors past 32-bit indexing are refused before anything is read.
  Conv2dParams huge = shapes::conv_params(1 << 12, 64, 128, 128, 64, 3, 3, 1, 1);
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_forward_stub(test::kernel_exec(dev), {ConvAlgo::implicit_gemm, {}}, huge, x.data(), w.data(),
                                 nullptr, y.data());
      },
      {"conv2d_forward_implicit_gemm", "32 bits"}));
  // The outputs were never touched by the failed calls.
  EXPECT_FALSE(test::all_written(y.download(), "y"));
}

// The implicit-GEMM dgrad's weight copy (ops::conv2d_dgrad_weight_copy_stub) against the layout written out by
// enumeration: per group, per stride phase (ah, aw) in order, the rows (k, r, s) of that phase's taps (r*dil_h mod
// stride_h = ah, s*dil_w mod stride_w = aw, increasing) of C/g channels. A copy: the bits must match, every
// element of the NaN-poisoned output written. Odd tap counts, more than 32 taps and channels (several tiles),
// groups, strides with phases that receive no tap, anisotropic stride and dilation, misaligned tensors.
TEST_P(ConvDevice, DgradWeightCopyMatchesItsLayout) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  std::vector<Conv2dParams> shapes;
  for (const ConvShape& s : shapes::conv_edge_shapes()) shapes.push_back(s.p);
  Conv2dParams a = shapes::conv_params(1, 80, 20, 20, 6, 5, 3, 1, 2, 1, 2);  // 40 channels per group
  a.stride_h = 3, a.stride_w = 2, a.dil_h = 2, a.dil_w = 3;
  shapes.push_back(a);
  shapes.push_back(shapes::conv_params(1, 3, 30, 30, 5, 3, 3, 4, 1, 2));   // stride 4, dilation 2: 2 of 4 phases
  shapes.push_back(shapes::conv_params(1, 2, 30, 30, 3, 1, 11, 2, 0, 1));  // 11 taps in a row
  for (const Conv2dParams& p : shapes) {
    const std::vector<float> w = test::random_vector(p.w_size(), 41);
    const int64_t Kg = p.K_per_group(), Cg = p.C_per_group();
    std::vector<float> want;
    for (int64_t grp = 0; grp < p.groups; ++grp)
      for (int64_t ah = 0; ah < p.stride_h; ++ah)
        for (int64_t aw = 0; aw < p.stride_w; ++aw)
          for (int64_t k = grp * Kg; k < (grp + 1) * Kg; ++k)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                if (r * p.dil_h % p.stride_h != ah || s * p.dil_w % p.stride_w != aw) continue;
                for (int64_t c = 0; c < Cg; ++c) want.push_back(w[((k * Cg + c) * p.R + r) * p.S + s]);
              }
    ASSERT_EQ(want.size(), w.size()) << p.str();
    for (size_t offset : {0, 1}) {
      DeviceCopy dw(w, dev, offset), dwt(w.size(), dev, offset);
      ops::conv2d_dgrad_weight_copy_stub(test::kernel_exec(dev), p, dw.data(), dwt.data());
      const std::vector<float> got = dwt.download();
      EXPECT_TRUE(test::all_written(got, "wt")) << p.str();
      EXPECT_TRUE(same_bits(got, want)) << p.str() << " offset " << offset << ": not the layout of the weight copy";
    }
  }
}

#if !FOVEA_HAVE_CUDA
TEST(ConvKernelBuild, CudaDeviceWithoutCudaBuildIsAClearError) {
  const Conv2dParams p = shapes::conv_params(1, 1, 3, 3, 1, 1, 1);
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_forward_stub(test::kernel_exec(kCUDA), {ConvAlgo::direct, {}}, p, nullptr, nullptr, nullptr,
                                 nullptr);
      },
      {"conv2d_forward", "no CUDA support"}));
}
#endif

INSTANTIATE_TEST_SUITE_P(Devices, ConvDevice, test::KernelDevices(), test::DeviceName);

// ---------------------------------------------------------------- emulator schedule orders

// A missing barrier shows up as different bits under another order of the fibers. CI runs the whole
// suite under each FOVEA_EMU_SCHEDULE as well; this checks it within one run.
TEST(ConvKernelEmu, SameBitsUnderEveryScheduleOrder) {
  for (const char* name : {"odd_3x3_pad1", "groups4_stride2", "pointwise_1x1", "cifar_16to32_32x32_n64"}) {
    const ConvData d(shape_named(name).p, 9);
    for (ConvAlgo algo : kAlgos)
      for (ConvOp op : kOps) {
        Launch l;
        l.algo = algo;
        std::vector<float> first;
        {
          emu::ScopedSchedule order("forward");
          first = run_op(kEmu, op, d, l);
        }
        EXPECT_TRUE(matches(first, d.expected(op), std::string(name) + " " + short_op(op)));
        for (const char* sched : {"reverse", "shuffle:3", "shuffle:12345"}) {
          emu::ScopedSchedule order(sched);
          EXPECT_TRUE(same_bits(first, run_op(kEmu, op, d, l)))
              << name << " " << conv_algo_name(algo) << " " << short_op(op) << " differs under " << sched;
        }
        {
          emu::ScopedWorkers one(1);
          EXPECT_TRUE(same_bits(first, run_op(kEmu, op, d, l)))
              << name << " " << conv_algo_name(algo) << " " << short_op(op) << " differs with 1 worker";
        }
      }
  }
}

// The point of dgrad's weight copy (kernels/conv2d_igemm_dgrad.cu), on the emulator's memory metrics at a small
// ResNet-20 shape (stride 1 and 2): every global load site of the GEMM (its weights and dy) takes at most 4.5
// 32-byte sectors per warp request (4 is ideal; w read transposed took 8-17), and the copy kernel reads and
// writes coalesced (at most one sector per request beyond the bytes asked for).
TEST(ConvKernelEmu, DgradWeightLoadsAreCoalesced) {
  if (!emu::instrumented_build_available())
    GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and "
                    "-DFOVEA_EMU_CHECKED=OFF builds do not make";
  for (const Conv2dParams& p :
       {shapes::conv_params(2, 16, 32, 32, 16, 3, 3, 1, 1), shapes::conv_params(2, 16, 32, 32, 32, 3, 3, 2, 1)}) {
    const ConvData d(p, 17);
    emu::profile_start();
    try {
      run_op(kEmu, ConvOp::backward_data, d, Launch{});
    } catch (...) {
      emu::profile_stop();
      throw;
    }
    const std::vector<emu::KernelMetrics> all = emu::profile_stop();
    int load_sites = 0, copy_sites = 0;
    for (const emu::KernelMetrics& k : all) {
      const bool gemm = k.name.find("conv2d_dgrad_igemm_kernel") != std::string::npos;
      const bool copy = k.name.find("conv2d_dgrad_weight_copy_kernel") != std::string::npos;
      for (const emu::SiteMetrics& s : k.sites) {
        if (s.space != emu::Space::global) continue;
        const std::string what = p.str() + " " + k.name + " " + s.location + " " + emu::op_name(s.op);
        if (gemm && s.op == emu::AccessOp::load) {  // the weights, and dy (3.3-3.9 at these shapes)
          ++load_sites;
          EXPECT_LE(s.per_request(s.sectors), 4.5) << what;
          std::printf("[ %s: %s %.2f sectors per request ]\n", p.str().c_str(), s.location.c_str(),
                      s.per_request(s.sectors));
        }
        if (copy) {
          ++copy_sites;
          EXPECT_LE(s.sectors, s.lanes * s.bytes_per_lane / 32 + s.requests)
              << what << ": " << s.per_request(s.sectors) << " sectors per request";
        }
      }
    }
    EXPECT_EQ(load_sites, 2) << p.str() << ": the dgrad kernel's weight and dy loads";
    EXPECT_EQ(copy_sites, 2) << p.str() << ": the weight copy's load and store";
  }
}

}  // namespace
}  // namespace fovea
