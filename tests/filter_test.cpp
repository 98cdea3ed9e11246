// layers/image_filters and `fovea filter`: every named filter against hand-computed values (true
// convolution, zero padding), correlation, the emu path (our conv2d kernels) against the CPU path
// (ref::filter2d), value modes and alpha, kernel files, PNG files in and out, and clear errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/io.h"
#include "core/philox.h"
#include "core/png_io.h"
#include "layers/ops/image_filters.h"
#include "tests/cli_test_util.h"
#include "tests/test_util.h"

namespace fovea::filters {
namespace {

namespace fs = std::filesystem;
using Grid = std::vector<std::vector<float>>;

using test::error_of;

Tensor planes_of(const Grid& g) {
  std::vector<float> v;
  for (const auto& row : g) v.insert(v.end(), row.begin(), row.end());
  return Tensor::from_vector(v, {1, int64_t(g.size()), int64_t(g[0].size())});
}

void expect_grid(const Tensor& t, const Grid& want, const std::string& what, float tol = 1e-6f) {
  ASSERT_EQ(t.numel(), int64_t(want.size() * want[0].size())) << what;
  const std::vector<float> got = t.to_vector<float>();
  const size_t W = want[0].size();
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < W; ++j)
      EXPECT_NEAR(got[i * W + j], want[i][j], tol) << what << " at (" << i << ", " << j << ")";
}

Grid constant(int64_t H, int64_t W, float v) {
  return Grid(size_t(H), std::vector<float>(size_t(W), v));
}

// A 7x7 image with a single 1 in the middle: its true convolution with k is k itself, centred
// (the textbook way to see a kernel); its correlation with k is k rotated by 180 degrees.
Grid delta7() {
  Grid g = constant(7, 7, 0.0f);
  g[3][3] = 1.0f;
  return g;
}

Grid centred(const Grid& k) {
  Grid g = constant(7, 7, 0.0f);
  const size_t R = k.size(), S = k[0].size();
  for (size_t a = 0; a < R; ++a)
    for (size_t b = 0; b < S; ++b) g[3 - R / 2 + a][3 - S / 2 + b] = k[a][b];
  return g;
}

Grid rotated(const Grid& k) {
  Grid r = k;
  for (size_t a = 0; a < k.size(); ++a)
    for (size_t b = 0; b < k[0].size(); ++b) r[a][b] = k[k.size() - 1 - a][k[0].size() - 1 - b];
  return r;
}

// The kernels as the documentation states them (written out here, not taken from the library).
const std::vector<std::pair<std::string, Grid>>& documented_kernels() {
  static const std::vector<std::pair<std::string, Grid>> k = {
      {"sobel-x", {{1, 0, -1}, {2, 0, -2}, {1, 0, -1}}},
      {"sobel-y", {{1, 2, 1}, {0, 0, 0}, {-1, -2, -1}}},
      {"laplacian", {{0, 1, 0}, {1, -4, 1}, {0, 1, 0}}},
      {"outline", {{-1, -1, -1}, {-1, 8, -1}, {-1, -1, -1}}},
      {"emboss", {{-2, -1, 0}, {-1, 1, 1}, {0, 1, 2}}},
      {"sharpen", {{0, -1, 0}, {-1, 5, -1}, {0, -1, 0}}},
      {"box-blur", {{1 / 9.f, 1 / 9.f, 1 / 9.f}, {1 / 9.f, 1 / 9.f, 1 / 9.f}, {1 / 9.f, 1 / 9.f, 1 / 9.f}}},
      {"gaussian",
       {{1 / 256.f, 4 / 256.f, 6 / 256.f, 4 / 256.f, 1 / 256.f},
        {4 / 256.f, 16 / 256.f, 24 / 256.f, 16 / 256.f, 4 / 256.f},
        {6 / 256.f, 24 / 256.f, 36 / 256.f, 24 / 256.f, 6 / 256.f},
        {4 / 256.f, 16 / 256.f, 24 / 256.f, 16 / 256.f, 4 / 256.f},
        {1 / 256.f, 4 / 256.f, 6 / 256.f, 4 / 256.f, 1 / 256.f}}},
      {"identity", {{0, 0, 0}, {0, 1, 0}, {0, 0, 0}}},
  };
  return k;
}

TEST(FilterNamed, ConvolvingAnImpulseGivesTheKernelAndCorrelatingGivesItRotated) {
  ops::Context cpu(kCPU);
  EXPECT_EQ(named_filters().size(), documented_kernels().size() + 1);  // + sobel-magnitude
  for (const auto& [name, k] : documented_kernels()) {
    expect_grid(apply_filter(cpu, planes_of(delta7()), named_filter(name)), centred(k), name + " convolution");
    expect_grid(apply_filter(cpu, planes_of(delta7()), as_correlation(named_filter(name))), centred(rotated(k)),
                name + " correlation");
  }
}

// x[i][j] = j on 5x5. With zero padding the column differences x[j+1] - x[j-1] are 1, 2, 2, 2, -3 and
// the row weights 1, 2, 1 sum to 4 inside and 3 on the top and bottom rows.
TEST(FilterNamed, SobelOnARampByHand) {
  ops::Context cpu(kCPU);
  Grid ramp = constant(5, 5, 0.0f);
  for (auto& row : ramp)
    for (size_t j = 0; j < 5; ++j) row[j] = float(j);
  const Grid gx = {{3, 6, 6, 6, -9}, {4, 8, 8, 8, -12}, {4, 8, 8, 8, -12}, {4, 8, 8, 8, -12}, {3, 6, 6, 6, -9}};
  // Only the top and bottom rows see the padding: sum_b w(b) x[j+b] = 1, 4, 8, 12, 11, positive at the top.
  const Grid gy = {{1, 4, 8, 12, 11}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {-1, -4, -8, -12, -11}};
  expect_grid(apply_filter(cpu, planes_of(ramp), named_filter("sobel-x")), gx, "sobel-x");
  expect_grid(apply_filter(cpu, planes_of(ramp), named_filter("sobel-y")), gy, "sobel-y");
  Grid mag = gx;
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = 0; j < 5; ++j) mag[i][j] = std::sqrt(gx[i][j] * gx[i][j] + gy[i][j] * gy[i][j]);
  EXPECT_FLOAT_EQ(mag[0][4], std::sqrt(81.0f + 121.0f));
  expect_grid(apply_filter(cpu, planes_of(ramp), named_filter("sobel-magnitude")), mag, "sobel-magnitude", 1e-5f);
  // A ramp has no curvature: the Laplacian is zero inside (the border sees the zero padding).
  const Tensor lap = apply_filter(cpu, planes_of(ramp), named_filter("laplacian"));
  for (int i = 1; i < 4; ++i)
    for (int j = 1; j < 4; ++j) EXPECT_EQ(lap.data<float>()[i * 5 + j], 0.0f);
}

// A constant image of ones, 5x5: inside, each filter gives the sum of its kernel; at a corner and
// at the middle of an edge, the sum of the kernel entries that land inside the image.
TEST(FilterNamed, ConstantImageByHand) {
  ops::Context cpu(kCPU);
  const Tensor ones = planes_of(constant(5, 5, 1.0f));
  struct Case {
    std::string name;
    float inside, corner, edge;  // at (2,2), (0,0), (0,2)
  };
  const Case cases[] = {
      {"box-blur", 1.0f, 4 / 9.0f, 6 / 9.0f},
      {"gaussian", 1.0f, 121 / 256.0f, 176 / 256.0f},  // (6+4+1)^2 and (6+4+1)(1+4+6+4+1)
      {"laplacian", 0.0f, -2.0f, -1.0f},
      {"outline", 0.0f, 5.0f, 3.0f},
      {"sharpen", 1.0f, 3.0f, 2.0f},
      {"identity", 1.0f, 1.0f, 1.0f},
      // Not symmetric: at (0,0) the true convolution uses k[0..1][0..1] = -2 -1 -1 +1.
      {"emboss", 1.0f, -3.0f, -2.0f},
      {"sobel-x", 0.0f, 3.0f, 0.0f},
  };
  for (const Case& c : cases) {
    const Tensor y = apply_filter(cpu, ones, named_filter(c.name));
    EXPECT_NEAR(y.data<float>()[2 * 5 + 2], c.inside, 1e-6) << c.name;
    EXPECT_NEAR(y.data<float>()[0], c.corner, 1e-6) << c.name;
    EXPECT_NEAR(y.data<float>()[2], c.edge, 1e-6) << c.name;
  }
  // Correlation uses the rotated kernel: emboss at (0,0) then sums k[1..2][1..2] = 1 + 1 + 1 + 2.
  EXPECT_NEAR(apply_filter(cpu, ones, as_correlation(named_filter("emboss"))).data<float>()[0], 5.0f, 1e-6);
}

TEST(FilterNamed, UnknownNameListsTheKnownOnes) {
  const std::string e = error_of([] { named_filter("blur"); });
  EXPECT_NE(e.find("'blur'"), std::string::npos) << e;
  EXPECT_NE(e.find("box-blur"), std::string::npos) << e;
  EXPECT_NE(e.find("sobel-magnitude"), std::string::npos) << e;
}

// Device emu runs ops::conv2d_forward (our CUDA kernels on the emulator) with the rotated kernel;
// it must equal the CPU reference's true convolution, for every filter and a custom asymmetric one.
TEST(FilterDevices, EmuEqualsCpu) {
  ops::Context cpu(kCPU), emu(kEmu);
  const std::vector<float> v = test::random_vector(3 * 13 * 11, 7, 0.0f, 1.0f);
  const Tensor planes = Tensor::from_vector(v, {3, 13, 11});
  std::vector<Filter> all;
  for (const NamedFilterInfo& f : named_filters()) all.push_back(named_filter(f.name));
  all.push_back(Filter{"custom 5x3", {parse_kernel("1 2 3\n-4 5 6\n7 -8 9\n0.5 1 -1\n2 0 3\n", "test")}, false});
  all.push_back(as_correlation(all.back()));
  for (const Filter& f : all) {
    const Tensor a = apply_filter(cpu, planes, f), b = apply_filter(emu, planes, f);
    ASSERT_EQ(b.shape(), planes.shape()) << f.name;
    const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
    EXPECT_LE(test::rel_l2(vb, va), 1e-5) << f.name;
  }
}

TEST(FilterImage, ValueModesAndAlpha) {
  ops::Context cpu(kCPU);
  // Grey + alpha, 1x3: sharpen gives 5a - b, 5b - a - c, 5c - b on [0.1, 0.5, 0.2].
  const Tensor img = Tensor::from_vector<float>({0.1f, 0.5f, 0.2f, 0.25f, 0.5f, 1.0f}, {2, 1, 3});
  const Filter f{"sharpen", {parse_kernel("0 -1 0\n-1 5 -1\n0 -1 0", "test")}, false};
  const float raw[3] = {0.5f - 0.5f, 2.5f - 0.3f, 1.0f - 0.5f};  // 0, 2.2, 0.5
  const Tensor c = filter_image(cpu, img, true, f, ValueMode::clamp);
  ASSERT_EQ(c.shape(), Shape({2, 1, 3}));
  EXPECT_NEAR(c.data<float>()[0], 0.0f, 1e-6);
  EXPECT_EQ(c.data<float>()[1], 1.0f);
  EXPECT_NEAR(c.data<float>()[2], raw[2], 1e-6);
  const Tensor n = filter_image(cpu, img, true, f, ValueMode::normalize);
  EXPECT_NEAR(n.data<float>()[0], 0.0f, 1e-6);
  EXPECT_NEAR(n.data<float>()[1], 1.0f, 1e-6);
  EXPECT_NEAR(n.data<float>()[2], (raw[2] - raw[0]) / (raw[1] - raw[0]), 1e-6);
  for (const Tensor& t : {c, n})
    for (int i = 3; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], img.data<float>()[i]) << "alpha must be unchanged";
  // abs: sobel-x on [0, 0.5, 0] gives 2*(x[j+1] - x[j-1]) = 1, 0, -1 -> 1, 0, 1; clamp keeps 1, 0, 0.
  const Tensor bump = Tensor::from_vector<float>({0.0f, 0.5f, 0.0f}, {1, 3});
  const Tensor a = filter_image(cpu, bump, false, named_filter("sobel-x"), ValueMode::abs);
  ASSERT_EQ(a.shape(), Shape({1, 3}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, 0.0f, 1.0f}));
  EXPECT_EQ(filter_image(cpu, bump, false, named_filter("sobel-x"), ValueMode::clamp).to_vector<float>(),
            (std::vector<float>{1.0f, 0.0f, 0.0f}));
  // A constant result cannot be normalised: it is clamped.
  const Tensor flat = filter_image(cpu, Tensor::from_vector<float>({0.3f, 0.3f, 0.3f}, {1, 1, 3}), false,
                                   named_filter("identity"), ValueMode::normalize);
  EXPECT_NEAR(flat.data<float>()[1], 0.3f, 1e-6);
  EXPECT_EQ(parse_value_mode("normalise"), ValueMode::normalize);
  EXPECT_NE(error_of([] { parse_value_mode("wrap"); }).find("'wrap'"), std::string::npos);
}

TEST(FilterImage, ColourChannelsAreFilteredSeparately) {
  ops::Context cpu(kCPU);
  const std::vector<float> v = test::random_vector(3 * 6 * 5, 3, 0.0f, 1.0f);
  const Tensor rgb = Tensor::from_vector(v, {3, 6, 5});
  const Filter f = named_filter("gaussian");
  const Tensor all = filter_image(cpu, rgb, false, f, ValueMode::clamp);
  for (int64_t c = 0; c < 3; ++c) {
    const Tensor one = filter_image(cpu, rgb.narrow(c, 1).to(kCPU), false, f, ValueMode::clamp);
    const std::vector<float> a = all.narrow(c, 1).to_vector<float>(), b = one.to_vector<float>();
    EXPECT_EQ(a, b) << "channel " << c;
  }
}

TEST(FilterKernelFile, FormatWithScaleCommentsAndCommas) {
  const Kernel k = parse_kernel("# a 3x3 Gaussian\n\n1/16\n1 2 1  # top\n2, 4, 2\n\t1 2 1\n", "g.txt");
  ASSERT_EQ(k.rows, 3);
  ASSERT_EQ(k.cols, 3);
  EXPECT_EQ(k.values, (std::vector<float>{1 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 4 / 16.f, 2 / 16.f, 1 / 16.f,
                                          2 / 16.f, 1 / 16.f}));
  const Kernel s = parse_kernel("scale 0.5\n1 -2 3.5e0\n", "s.txt");
  EXPECT_EQ(s.rows, 1);
  EXPECT_EQ(s.values, (std::vector<float>{0.5f, -1.0f, 1.75f}));
  const Kernel column = parse_kernel("1\n2\n1\n", "c.txt");  // a 3x1 kernel: plain numbers are rows
  EXPECT_EQ(column.rows, 3);
  EXPECT_EQ(column.cols, 1);
  EXPECT_EQ(k.flipped().flipped().values, k.values);
  EXPECT_EQ(s.flipped().values, (std::vector<float>{1.75f, -1.0f, 0.5f}));
}

TEST(FilterKernelFile, BadKernelsGiveErrorsNamingTheFileAndLine) {
  struct Case {
    std::string text, expect;
  };
  const Case cases[] = {
      {"1 2\n3 4\n", "2x2"},
      {"1 2 3\n4 5\n6 7 8\n", "line 2"},
      {"1 2 3\n4 x 6\n7 8 9\n", "'x' is not a number"},
      {"# nothing\n\n", "no kernel rows"},
      {"1 2 3\n1/2\n", "only be the first line"},
      {"1/0\n1\n", "divides by zero"},
      {"scale\n1\n", "scale X"},
      {"1 nan 1\n", "'nan' is not a number"},
      {"1e39\n", "'1e39'"},  // finite as double, infinite as float
  };
  for (const Case& c : cases) {
    const std::string e = error_of([&] { parse_kernel(c.text, "my_kernel.txt"); });
    EXPECT_NE(e.find("my_kernel.txt"), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.text << " -> " << e;
  }
  std::string big;
  for (int i = 0; i < 65; ++i) big += "1\n";
  EXPECT_NE(error_of([&] { parse_kernel(big, "big.txt"); }).find("limit"), std::string::npos);
  const std::string e = error_of([] { read_kernel_file("/nonexistent/k.txt"); });
  EXPECT_NE(e.find("/nonexistent/k.txt"), std::string::npos) << e;
}

// ---------------------------------------------------------------- `fovea filter` end to end

using Result = test::CliResult;
constexpr auto run = &test::run_fovea;

class FilterCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fovea_filter_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Values k / (2^bits - 1), so that a round trip must give them back exactly.
  static Tensor quantized(int64_t C, int64_t H, int64_t W, int bits, uint64_t seed) {
    const uint32_t maxv = bits == 16 ? 65535u : 255u;
    std::vector<float> v(size_t(C * H * W));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(philox_u32(seed, 0, i) % (maxv + 1)) / float(maxv);
    return Tensor::from_vector(v, {C, H, W});
  }
  // The integer sample levels of a [0,1] image (compares files exactly, whatever the float rounding).
  static std::vector<long> levels(const Tensor& t, int bits) {
    const double maxv = bits == 16 ? 65535.0 : 255.0;
    std::vector<long> out;
    for (float v : t.to_vector<float>()) out.push_back(std::lround(double(v) * maxv));
    return out;
  }
  fs::path dir_;
};

TEST_F(FilterCli, IdentityRoundTripsSixteenBitRgbaAndEightBitGrey) {
  for (auto [C, bits] : {std::pair<int64_t, int>{4, 16}, {1, 8}, {2, 16}, {3, 8}}) {
    const Tensor img = quantized(C, 9, 7, bits, uint64_t(C * 100 + bits));
    write_png(path("in.png"), img, bits);
    const Result r = run("filter " + path("in.png") + " " + path("out.png") + " --kernel identity");
    ASSERT_EQ(r.code, 0) << r.output;
    const PngImage back = read_png(path("out.png"));
    EXPECT_EQ(back.bit_depth, bits);
    EXPECT_EQ(back.has_alpha, C == 2 || C == 4);
    ASSERT_EQ(back.pixels.shape(), img.shape());
    EXPECT_EQ(levels(back.pixels, bits), levels(img, bits)) << C << " channels, " << bits << " bit";
  }
}

TEST_F(FilterCli, SobelOnEmuMatchesCpuAndTheFile) {
  // 16-bit RGBA in, 16-bit out: the colour channels are filtered, the alpha copied.
  const Tensor img = quantized(4, 12, 10, 16, 5);
  write_png(path("in.png"), img, 16);
  const Result e = run("filter " + path("in.png") + " " + path("emu.png") +
                       " --kernel sobel-magnitude --values normalize --device emu --compare-cpu");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_NE(e.output.find("emu vs cpu: relative L2 error"), std::string::npos) << e.output;
  const Result c =
      run("filter " + path("in.png") + " " + path("cpu.png") + " --kernel sobel-magnitude --values normalize");
  ASSERT_EQ(c.code, 0) << c.output;
  const PngImage a = read_png(path("emu.png")), b = read_png(path("cpu.png"));
  const std::vector<float> va = a.pixels.to_vector<float>(), vb = b.pixels.to_vector<float>();
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], 1.5 / 65535) << i;
  // The file holds what the library computes.
  ops::Context cpu(kCPU);
  const Tensor want = filter_image(cpu, img, true, named_filter("sobel-magnitude"), ValueMode::normalize);
  const std::vector<float> vw = want.to_vector<float>();
  for (size_t i = 0; i < vw.size(); ++i) ASSERT_NEAR(vb[i], vw[i], 0.51 / 65535) << i;
  const std::vector<long> lb = levels(b.pixels, 16), li = levels(img, 16);
  for (size_t i = 3 * 12 * 10; i < vw.size(); ++i) ASSERT_EQ(lb[i], li[i]) << "alpha";
}

TEST_F(FilterCli, KernelFileAndEightBitOutput) {
  write_file_atomic(path("k.txt"), "# 1x3 difference\nscale 1\n-1 0 1\n");
  const Tensor img = quantized(1, 4, 5, 16, 9);
  write_png(path("in.png"), img, 16);
  const Result r = run("filter " + path("in.png") + " " + path("out.png") + " --kernel-file " + path("k.txt") +
                       " --values abs --bits 8 --correlate");
  ASSERT_EQ(r.code, 0) << r.output;
  const PngImage back = read_png(path("out.png"));
  EXPECT_EQ(back.bit_depth, 8);
  // Correlation with [-1 0 1]: x[j+1] - x[j-1], zero outside.
  const float* x = img.data<float>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j) {
      const float l = j > 0 ? x[i * 5 + j - 1] : 0.0f, rr = j < 4 ? x[i * 5 + j + 1] : 0.0f;
      EXPECT_NEAR(back.pixels.data<float>()[i * 5 + j], std::min(1.0f, std::fabs(rr - l)), 0.51 / 255) << i << "," << j;
    }
}

TEST_F(FilterCli, BadInputsGiveClearErrors) {
  write_file_atomic(path("notes.png"), "this is a text file, not a PNG\n");
  write_png(path("ok.png"), quantized(1, 3, 3, 8, 1), 8);
  write_file_atomic(path("bad_kernel.txt"), "1 2\n3 4\n");
  struct Case {
    std::string args, expect1, expect2;
  };
  const Case cases[] = {
      {path("notes.png") + " " + path("o.png") + " --kernel sobel-x", path("notes.png"), "PNG"},
      {path("missing.png") + " " + path("o.png") + " --kernel sobel-x", path("missing.png"), ""},
      {path("ok.png") + " " + path("o.png") + " --kernel-file " + path("bad_kernel.txt"), path("bad_kernel.txt"),
       "odd"},
      {path("ok.png") + " " + path("o.png") + " --kernel-file " + path("no_kernel.txt"), path("no_kernel.txt"), ""},
      {path("ok.png") + " " + path("o.png") + " --kernel edges", "'edges'", "sobel-x"},
      {path("ok.png") + " " + path("o.png"), "exactly one of --kernel", ""},
      {path("ok.png") + " " + path("o.png") + " --kernel identity --kernel-file " + path("bad_kernel.txt"),
       "exactly one of --kernel", ""},
  };
  for (const Case& c : cases) {
    const Result r = run("filter " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect1), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect2), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(path("o.png")));
}

TEST_F(FilterCli, HelpDocumentsConvolutionAndTheKernels) {
  const Result r = run("filter --help");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* s : {"TRUE convolution", "correlation", "--correlate", "1/16", "normalize", "alpha"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  for (const NamedFilterInfo& f : named_filters()) EXPECT_NE(r.output.find(f.name), std::string::npos) << f.name;
}

}  // namespace
}  // namespace fovea::filters
