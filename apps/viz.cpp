// fovea viz: what a trained CNN sees.
//   fovea viz CKPT                                        the model's layers (indices for --layer)
//   fovea viz CKPT --filters OUT.png [--layer N]          a conv layer's filters as an image grid
//   fovea viz CKPT --activations IMAGE --layer N OUT.png  every channel of layer N's output for one image
#include <fmt/core.h>

#include <cmath>
#include <memory>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/io.h"
#include "core/plot.h"
#include "core/png_io.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/layers.h"

namespace fovea::app {
namespace {

struct VizOptions {
  std::string checkpoint, out, filters, activations, device = "cpu", norm;
  int64_t layer = -1;
  int scale = 0, columns = 0, bits = 8;
};

TileNorm parse_norm(const std::string& s) {
  if (s == "tile") return TileNorm::per_tile;
  if (s == "signed") return TileNorm::per_tile_signed;
  if (s == "global") return TileNorm::global;
  if (s == "clamp") return TileNorm::clamp;
  FOVEA_FAIL("viz: --norm must be tile, signed, global or clamp, got '", s, "'");
}

// Columns for K tiles: a divisor of K near sqrt(K) (32 -> 8 x 4), else ceil(sqrt(K)).
int default_columns(int64_t K) {
  const int64_t root = int64_t(std::ceil(std::sqrt(double(K))));
  for (int64_t c = root; c <= 2 * root; ++c)
    if (K % c == 0) return int(c);
  return int(root);
}

GridOptions grid_options(const VizOptions& o, int64_t K, int64_t H, int64_t W, TileNorm default_norm) {
  GridOptions g;
  // Small tiles (3x3 filters, 7x7 maps) are magnified to about 48 pixels so that they can be seen.
  g.scale = o.scale > 0 ? o.scale : int(std::max<int64_t>(1, (48 + std::max(H, W) - 1) / std::max(H, W)));
  g.columns = o.columns > 0 ? o.columns : default_columns(K);
  g.border = g.scale >= 8 ? 4 : g.scale > 1 ? 2 : 1;  // white borders must stand out from white pixels
  g.norm = o.norm.empty() ? default_norm : parse_norm(o.norm);
  return g;
}

// The hint that ends every error about --layer.
std::string layer_hint(const VizOptions& o) {
  return cat("; `fovea viz ", o.checkpoint, "` lists the layers");
}

// The first conv2d layer, depth first (the stem of a ResNet is inside no block, but be general).
const nn::Layer* first_conv(const nn::Layer& l) {
  if (std::string_view(l.kind()) == "conv2d") return &l;
  for (const auto& [name, child] : l.children())
    if (const nn::Layer* c = first_conv(*child)) return c;
  return nullptr;
}

int show_filters(const VizOptions& o, nn::Model& model) {
  const nn::Sequential& net = model.net();
  const nn::Layer* conv = nullptr;
  std::string where;
  if (o.layer >= 0) {
    FOVEA_CHECK(size_t(o.layer) < net.size(), "viz: --layer ", o.layer, " is out of range: the model has ", net.size(),
                " layers (0..", net.size() - 1, ")", layer_hint(o));
    conv = &net.at(size_t(o.layer));
    FOVEA_CHECK(std::string_view(conv->kind()) == "conv2d", "viz: layer ", o.layer, " is ", conv->describe(),
                ", not a convolution; --filters needs a conv layer", layer_hint(o));
    where = fmt::format("layer {}", o.layer);
  } else {
    conv = first_conv(net);
    FOVEA_CHECK(conv != nullptr, "viz: checkpoint '", o.checkpoint, "' has no convolution layer to show");
    where = "the first conv layer";
  }
  Tensor w;
  for (const nn::Param& p : conv->params())
    if (p.name == "weight") w = p.value.to(kCPU);
  FOVEA_CHECK(w.defined() && w.ndim() == 4, "viz: ", conv->describe(), " has no 4-D weight");
  const int64_t K = w.size(0), C = w.size(1), R = w.size(2), S = w.size(3);
  std::vector<Tensor> tiles;
  GridOptions g;
  if (C == 1 || C == 3) {
    // One tile per filter: grey, or colour for an RGB input (the three input channels as R, G, B).
    for (int64_t k = 0; k < K; ++k) tiles.push_back(w.narrow(k, 1).reshape({C, R, S}));
    g = grid_options(o, K, R, S, TileNorm::per_tile);
  } else {
    // One row per filter, one tile per input channel.
    const Tensor flat = w.reshape({K * C, R, S});
    for (int64_t i = 0; i < K * C; ++i) tiles.push_back(flat.narrow(i, 1).reshape({R, S}));
    g = grid_options(o, K * C, R, S, TileNorm::per_tile);
    if (o.columns <= 0) g.columns = int(C);
  }
  write_png(o.filters, image_grid(tiles, g), o.bits);
  fmt::print(messages_stream(o.filters),
             "{} ({}): {} filters of {} channel(s), {}x{} -> {} ({} tiles, {} per row, x{} magnified)\n", where,
             conv->describe(), K, C, R, S, o.filters, tiles.size(), g.columns, g.scale);
  return 0;
}

// The image as the model's input [1,C,H,W]: alpha dropped, grey <-> RGB converted, the checkpoint's
// normalisation applied (as in training).
Tensor model_input(const VizOptions& o, const nn::Checkpoint& ckpt, const nn::Model& model) {
  const PngImage img = read_png(o.activations);
  const Shape& s = model.sample_shape();
  FOVEA_CHECK(s.ndim() == 3, "viz: the model takes samples of shape ", s.str(), ", not images");
  const int64_t C0 = s[0], H0 = s[1], W0 = s[2];
  const int64_t C = img.pixels.size(0) - (img.has_alpha ? 1 : 0), H = img.pixels.size(1), W = img.pixels.size(2);
  FOVEA_CHECK(H == H0 && W == W0, "viz: image '", o.activations, "' is ", W, "x", H, " pixels but the model takes ", W0,
              "x", H0, " (no resizing is done)");
  FOVEA_CHECK(C0 == C || (C0 == 3 && C == 1) || (C0 == 1 && C == 3), "viz: image '", o.activations, "' has ", C,
              " colour channel(s) but the model takes ", C0);
  const float* p = img.pixels.data<float>();
  std::vector<float> x(size_t(C0 * H * W));
  for (int64_t c = 0; c < C0; ++c)
    for (int64_t i = 0; i < H * W; ++i) {
      float v;
      if (C == C0)
        v = p[c * H * W + i];
      else if (C == 1)
        v = p[i];  // grey to RGB: the same value in each channel
      else
        v = 0.299f * p[i] + 0.587f * p[H * W + i] + 0.114f * p[2 * H * W + i];  // RGB to grey (Rec. 601 luma)
      const data::Normalization& n = ckpt.meta.normalization;
      if (!n.empty()) v = (v - n.mean[size_t(c)]) / n.stddev[size_t(c)];
      x[size_t(c * H * W + i)] = v;
    }
  if (C != C0)
    std::fprintf(stderr, "fovea: viz: image '%s' converted from %s to %s for the model\n", o.activations.c_str(),
                 C == 1 ? "grey" : "RGB", C0 == 1 ? "grey" : "RGB");
  return Tensor::from_vector(x, {1, C0, H, W});
}

int show_activations(const VizOptions& o, const nn::Checkpoint& ckpt, nn::Model& model) {
  nn::Sequential& net = model.net();
  FOVEA_CHECK(o.layer >= 0, "viz: --activations needs --layer N (the layer whose output to show)", layer_hint(o));
  FOVEA_CHECK(size_t(o.layer) < net.size(), "viz: --layer ", o.layer, " is out of range: the model has ", net.size(),
              " layers (0..", net.size() - 1, ")", layer_hint(o));
  FOVEA_CHECK(!o.out.empty(), "viz: give the output file: fovea viz CKPT --activations IMAGE --layer N OUT.png");
  const Device device = parse_device(o.device);
  require_device(device);
  ops::Context ctx(device);
  model.to(device);
  model.train(false);  // inference: dropout off, batch norm with its running statistics
  Tensor x = model_input(o, ckpt, model).to(device);
  for (size_t i = 0; i <= size_t(o.layer); ++i) x = net.at(i).forward(ctx, x).y;
  const Tensor y = x.to(kCPU);
  FOVEA_CHECK(y.ndim() == 4, "viz: layer ", o.layer, " (", net.at(size_t(o.layer)).describe(), ") outputs ",
              nn::sample_shape_str(y.shape()), ", not feature maps [C,H,W]; choose a layer before the flatten",
              layer_hint(o));
  const int64_t K = y.size(1), H = y.size(2), W = y.size(3);
  const GridOptions g = grid_options(o, K, H, W, TileNorm::per_tile);
  write_png(o.out, image_grid(y.reshape({K, H, W}), g), o.bits);
  fmt::print(messages_stream(o.out), "layer {} ({}) on {}: {} channels of {}x{} -> {} ({} per row, x{} magnified)\n",
             o.layer, net.at(size_t(o.layer)).describe(), device.str(), K, H, W, o.out, g.columns, g.scale);
  return 0;
}

int run_viz(const VizOptions& o) {
  FOVEA_CHECK(o.filters.empty() || o.activations.empty(), "viz: give --filters or --activations, not both");
  for (const std::string& out : {o.out, o.filters}) {
    refuse_output_over_input(out, "output", o.checkpoint, "checkpoint");
    refuse_output_over_input(out, "output", o.activations, "--activations");
  }
  const nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint);
  std::unique_ptr<nn::Model> model = nn::model_from_checkpoint(ckpt, o.checkpoint);
  if (!o.filters.empty()) {
    FOVEA_CHECK(o.out.empty(), "viz: --filters takes the output file itself (--filters OUT.png); unexpected '", o.out,
                "'");
    return show_filters(o, *model);
  }
  if (!o.activations.empty()) return show_activations(o, ckpt, *model);
  FOVEA_CHECK(o.out.empty() && o.layer < 0, "viz: give --filters OUT.png or --activations IMAGE --layer N OUT.png");
  fmt::print("{}: model {}, input {}, {} classes\n{}\n", o.checkpoint, model->name(), model->sample_shape().str(),
             model->classes(), model->summary());
  fmt::print(
      "\n--layer takes the index in the first column; --filters shows a conv layer's weights, "
      "--activations any layer with [C,H,W] output.\n");
  return 0;
}

Command viz_command(
    "viz", "Show a trained CNN's filters, or every channel of a layer's output for one image, as an image grid",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<VizOptions>();
      app.add_option("checkpoint", o->checkpoint, "a checkpoint written by fovea train")->required();
      app.add_option("output", o->out, "output PNG of --activations");
      app.add_option("--filters", o->filters,
                     "write the filters of the first conv layer (or of --layer N) to this PNG");
      app.add_option("--activations", o->activations, "an input image (PNG, the model's input size)");
      app.add_option("--layer", o->layer, "top-level layer index (fovea viz CKPT lists them)")->check(kNonNegativeInt);
      app.add_option("--device", o->device, "cpu, emu or cuda[:N] for --activations")->capture_default_str();
      app.add_option("--norm", o->norm,
                     "tile grey levels: tile (each tile's min..max to black..white, the default), signed (zero is "
                     "mid-grey, +-max|v| of the tile white/black), global (one min..max for all tiles), clamp")
          ->check(one_of({"tile", "signed", "global", "clamp"}));
      app.add_option("--scale", o->scale, "magnify each tile this many times (default: to about 48 pixels)")
          ->check(kPositiveInt);
      app.add_option("--columns", o->columns, "tiles per row (default: near the square root of the count)")
          ->check(kPositiveInt);
      app.add_option("--bits", o->bits, "PNG bit depth, 8 or 16")->capture_default_str()->check(one_of({"8", "16"}));
      app.footer(
          "\nLayers are numbered as in `fovea viz CKPT` (and fovea train's summary): the index of the top-level\n"
          "layer whose output is shown. The input image goes through the checkpoint's normalisation first, as in\n"
          "training; it must have the model's size (alpha is dropped, grey/RGB converted when needed). A filter of\n"
          "a layer with 1 or 3 input channels is one tile (grey or colour); otherwise each filter is a row with one\n"
          "tile per input channel.");
      return [o] { return run_viz(*o); };
    });

}  // namespace
}  // namespace fovea::app
