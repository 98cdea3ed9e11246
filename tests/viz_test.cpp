// `fovea viz` end to end on checkpoints written here by the checkpoint API: the filter grid holds
// each filter (per-tile min..max), the activation grid holds each channel of layer N's output for
// the (normalised) input image, compared with the reference convolution and the model's own forward
// pass; emu equals cpu; bad arguments give clear errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/io.h"
#include "core/philox.h"
#include "core/png_io.h"
#include "cpu_reference/conv2d.h"
#include "layers/nn/checkpoint.h"
#include "tests/cli_test_util.h"

namespace fovea::nn {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;
constexpr auto run = &test::run_fovea;

// Where tile k's pixels are in a grid written with `scale`, `cols` (the border is 2 when scaled, else 1).
struct Layout {
  int64_t th, tw, scale, cols, border;
  int64_t y0(int64_t k) const { return border + (k / cols) * (th * scale + border); }
  int64_t x0(int64_t k) const { return border + (k % cols) * (tw * scale + border); }
  int64_t height(int64_t K) const { return ((K + cols - 1) / cols) * (th * scale + border) + border; }
  int64_t width(int64_t K) const { return std::min(K, cols) * (tw * scale + border) + border; }
};

// Checks channel c of the grid image against tile k given as raw values mapped by (v - lo) / (hi - lo).
void expect_tile(const Tensor& grid, int64_t c, const Layout& L, int64_t k, const float* v, float lo, float hi,
                 const std::string& what) {
  const int64_t GH = grid.size(1), GW = grid.size(2);
  const float* g = grid.data<float>() + c * GH * GW;
  for (int64_t y = 0; y < L.th * L.scale; ++y)
    for (int64_t x = 0; x < L.tw * L.scale; ++x) {
      const float want = hi > lo ? (v[(y / L.scale) * L.tw + x / L.scale] - lo) / (hi - lo) : 0.5f;
      ASSERT_NEAR(g[(L.y0(k) + y) * GW + L.x0(k) + x], want, 2.0 / 65535)
          << what << " tile " << k << " (" << y << ", " << x << ")";
    }
}

class VizCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fovea_viz_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    ops::Context ctx(kCPU);
    // 0 conv 1->4, 1 relu, 2 conv 4->5, 3 relu, 4 maxpool, 5 flatten, 6 linear
    std::unique_ptr<Model> m = build_model("conv:4:3,relu,conv:5:3:pad=1,relu,maxpool:2,linear", {1, 8, 8}, 3);
    m->initialize(ctx, 11);
    CheckpointMeta meta;
    meta.dataset = "synthetic";
    meta.class_names = {"a", "b", "c"};
    meta.normalization.mean = {0.25f};
    meta.normalization.stddev = {0.5f};
    save_checkpoint(path("grey.safetensors"), *m, nullptr, meta);
    std::unique_ptr<Model> rgb = build_model("conv:2:3,relu,linear", {3, 6, 6}, 2);
    rgb->initialize(ctx, 12);
    meta.class_names = {"a", "b"};
    meta.normalization = {};
    save_checkpoint(path("rgb.safetensors"), *rgb, nullptr, meta);
    // The input: an 8x8 grey 16-bit image with random levels.
    std::vector<float> v(64);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(philox_u32(3, 0, i) % 65536) / 65535.0f;
    image_ = Tensor::from_vector(v, {1, 8, 8});
    write_png(path("in.png"), image_, 16);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Tensor normalised_input() const {
    std::vector<float> v = image_.to_vector<float>();
    for (float& x : v) x = (x - 0.25f) / 0.5f;
    return Tensor::from_vector(v, {1, 1, 8, 8});
  }
  fs::path dir_;
  Tensor image_;
};

TEST_F(VizCli, FirstLayerFiltersOnePerTile) {
  const Result r =
      run("viz " + path("grey.safetensors") + " --filters " + path("f.png") + " --bits 16 --scale 2 --columns 3");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor w = load_checkpoint(path("grey.safetensors")).model.at("0.weight");
  ASSERT_EQ(w.shape(), Shape({4, 1, 3, 3}));
  const PngImage g = read_png(path("f.png"));
  const Layout L{3, 3, 2, 3, 2};
  ASSERT_EQ(g.pixels.shape(), Shape({1, L.height(4), L.width(4)}));
  for (int64_t k = 0; k < 4; ++k) {
    const float* v = w.data<float>() + k * 9;
    const auto [lo, hi] = std::minmax_element(v, v + 9);
    expect_tile(g.pixels, 0, L, k, v, *lo, *hi, "filters");
  }
  // The border and the two empty places of the second row are white.
  EXPECT_EQ(g.pixels.data<float>()[0], 1.0f);
  EXPECT_EQ(g.pixels.data<float>()[L.y0(5) * L.width(4) + L.x0(5) + 2], 1.0f);
}

TEST_F(VizCli, DeeperConvLayerShowsOneRowPerFilter) {
  const Result r =
      run("viz " + path("grey.safetensors") + " --filters " + path("f.png") + " --layer 2 --bits 16 --scale 1");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor w = load_checkpoint(path("grey.safetensors")).model.at("2.weight");
  ASSERT_EQ(w.shape(), Shape({5, 4, 3, 3}));
  const PngImage g = read_png(path("f.png"));
  const Layout L{3, 3, 1, 4, 1};
  ASSERT_EQ(g.pixels.shape(), Shape({1, L.height(20), L.width(20)}));
  for (int64_t t = 0; t < 20; ++t) {  // tile t = filter t / 4, input channel t % 4
    const float* v = w.data<float>() + t * 9;
    const auto [lo, hi] = std::minmax_element(v, v + 9);
    expect_tile(g.pixels, 0, L, t, v, *lo, *hi, "layer 2 filters");
  }
}

TEST_F(VizCli, ColourFiltersOfAnRgbModel) {
  const Result r = run("viz " + path("rgb.safetensors") + " --filters " + path("f.png") + " --bits 16 --scale 3");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor w = load_checkpoint(path("rgb.safetensors")).model.at("0.weight");
  const PngImage g = read_png(path("f.png"));
  const Layout L{3, 3, 3, 2, 2};
  ASSERT_EQ(g.pixels.shape(), Shape({3, L.height(2), L.width(2)}));
  for (int64_t k = 0; k < 2; ++k) {
    const float* v = w.data<float>() + k * 27;  // [3,3,3]: one min..max over the three colours
    const auto [lo, hi] = std::minmax_element(v, v + 27);
    for (int64_t c = 0; c < 3; ++c) expect_tile(g.pixels, c, L, k, v + c * 9, *lo, *hi, "rgb filters");
  }
}

// Layer 1 (relu after the first conv) computed independently: the reference conv on the normalised image.
TEST_F(VizCli, FirstLayerActivationsMatchTheReferenceConvolution) {
  const Result r = run("viz " + path("grey.safetensors") + " --activations " + path("in.png") + " --layer 1 " +
                       path("a.png") + " --norm global --bits 16 --scale 1 --columns 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const Checkpoint ck = load_checkpoint(path("grey.safetensors"));
  Conv2dParams p;
  p.C = 1, p.H = 8, p.W = 8, p.K = 4, p.R = 3, p.S = 3;
  std::vector<float> y(size_t(p.y_size()));
  const Tensor x = normalised_input();
  ref::conv2d_forward(p, x.data<float>(), ck.model.at("0.weight").data<float>(), ck.model.at("0.bias").data<float>(),
                      y.data());
  for (float& v : y) v = std::max(v, 0.0f);
  const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
  ASSERT_LT(*lo, *hi);
  const PngImage g = read_png(path("a.png"));
  const Layout L{6, 6, 1, 2, 1};
  ASSERT_EQ(g.pixels.shape(), Shape({1, L.height(4), L.width(4)}));
  for (int64_t k = 0; k < 4; ++k) expect_tile(g.pixels, 0, L, k, y.data() + k * 36, *lo, *hi, "layer 1");
}

// Layer 3 against the model's own full forward pass (its trace of every layer's output), per-tile
// normalisation; device emu (our kernels) gives the same picture.
TEST_F(VizCli, DeeperActivationsMatchTheModelAndEmuEqualsCpu) {
  for (const char* device : {"cpu", "emu"}) {
    const Result r = run("viz " + path("grey.safetensors") + " --activations " + path("in.png") + " --layer 3 " +
                         path(std::string(device) + ".png") + " --bits 16 --scale 1 --columns 5 --device " + device);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const Checkpoint ck = load_checkpoint(path("grey.safetensors"));
  std::unique_ptr<Model> m = model_from_checkpoint(ck, "grey");
  m->train(false);
  Sequential::Trace trace;
  m->net().set_trace(&trace);
  ops::Context ctx(kCPU);
  m->forward(ctx, normalised_input());
  ASSERT_GE(trace.outputs.size(), 4u);
  const Tensor y = trace.outputs[3];
  ASSERT_EQ(y.shape(), Shape({1, 5, 6, 6}));
  const PngImage cpu = read_png(path("cpu.png")), emu = read_png(path("emu.png"));
  const Layout L{6, 6, 1, 5, 1};
  ASSERT_EQ(cpu.pixels.shape(), Shape({1, L.height(5), L.width(5)}));
  for (int64_t k = 0; k < 5; ++k) {
    const float* v = y.data<float>() + k * 36;
    const auto [lo, hi] = std::minmax_element(v, v + 36);
    expect_tile(cpu.pixels, 0, L, k, v, *lo, *hi, "layer 3 cpu");
    expect_tile(emu.pixels, 0, L, k, v, *lo, *hi, "layer 3 emu");
  }
}

TEST_F(VizCli, ListsTheLayers) {
  const Result r = run("viz " + path("grey.safetensors"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* s : {"conv2d 1->4 3x3", "conv2d 4->5 3x3", "[5, 6, 6]", "--layer"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
}

TEST_F(VizCli, BadArgumentsGiveClearErrors) {
  write_file_atomic(path("notes.png"), "not a PNG\n");
  write_png(path("small.png"), Tensor::zeros({1, 5, 5}), 8);
  const std::string ck = path("grey.safetensors");
  struct Case {
    std::string args, expect1, expect2;
  };
  const Case cases[] = {
      {ck + " --activations " + path("in.png") + " --layer 20 " + path("o.png"), "out of range", "lists the layers"},
      {ck + " --filters " + path("o.png") + " --layer 1", "not a convolution", "relu"},
      {ck + " --activations " + path("in.png") + " --layer 6 " + path("o.png"), "not feature maps", "[3]"},
      {ck + " --activations " + path("in.png") + " " + path("o.png"), "needs --layer", ""},
      {ck + " --activations " + path("in.png") + " --layer 1", "output file", ""},
      {ck + " --activations " + path("small.png") + " --layer 1 " + path("o.png"), path("small.png"), "8x8"},
      {ck + " --activations " + path("notes.png") + " --layer 1 " + path("o.png"), path("notes.png"), "PNG"},
      {path("missing.safetensors") + " --filters " + path("o.png"), path("missing.safetensors"), ""},
      {path("notes.png") + " --filters " + path("o.png"), path("notes.png"), ""},
      {ck + " --filters " + path("o.png") + " --activations " + path("in.png"), "not both", ""},
  };
  for (const Case& c : cases) {
    const Result r = run("viz " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect1), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect2), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(path("o.png")));
}

}  // namespace
}  // namespace fovea::nn
