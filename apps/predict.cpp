// fovea predict --model resnet50 --weights W.pth IMAGE...: an ImageNet classifier with torchvision's
// weights names what it sees in each photo (top-k labels with their softmax probabilities), through
// torchvision's eval transform (layers/data/image.h); --grid draws each photo with its top three.
// fovea predict --checkpoint C IMAGE...: a model trained by fovea train (e.g. fine-tuned on a folder of
// your images), with the class names, image size, transform and normalisation its checkpoint recorded.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/error.h"
#include "core/io.h"
#include "core/plot.h"
#include "core/png_io.h"
#include "layers/data/image.h"
#include "layers/data/imagenet_classes.h"
#include "layers/nn/checkpoint.h"

namespace fovea::app {
namespace {

struct PredictOptions {
  std::string model = "resnet50", weights, checkpoint, device = "auto", backend = "auto", grid;
  std::vector<std::string> images;
  int64_t topk = 5, batch = 8;
};

struct Guess {
  int64_t index;
  double probability;
};

// Softmax in double of one row of logits, sorted by probability (ties: the lower class first).
std::vector<Guess> ranked(const float* logits, int64_t classes) {
  const double top = *std::max_element(logits, logits + classes);
  std::vector<double> p(static_cast<size_t>(classes));
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c) sum += p[size_t(c)] = std::exp(double(logits[c]) - top);
  std::vector<Guess> out(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) out[size_t(c)] = {c, p[size_t(c)] / sum};
  std::stable_sort(out.begin(), out.end(),
                   [](const Guess& a, const Guess& b) { return a.probability > b.probability; });
  return out;
}

// The course's figure: each photo as the network sees it (the 224x224 centre crop) with its top three
// guesses under it, three photos to a row.
void draw_grid(const std::string& path, const std::vector<Image8>& crops,
               const std::vector<std::vector<Guess>>& guesses, const std::vector<std::string>& names) {
  const int64_t tile = crops.at(0).width, pad = 8, line = 11, lines = 3;
  const int64_t cols = std::min<int64_t>(3, int64_t(crops.size()));
  const int64_t rows = (int64_t(crops.size()) + cols - 1) / cols;
  const int64_t cell_w = tile + pad, cell_h = tile + 4 + lines * line + pad;
  const int64_t W = cols * cell_w + pad, H = rows * cell_h + pad;
  Tensor canvas = Tensor::from_vector(std::vector<float>(size_t(3 * H * W), 1.0f), {3, H, W});
  float* px = canvas.data<float>();
  for (size_t i = 0; i < crops.size(); ++i) {
    const Image8& img = crops[i];
    const int64_t x0 = pad + int64_t(i) % cols * cell_w, y0 = pad + int64_t(i) / cols * cell_h;
    for (int64_t y = 0; y < img.height; ++y)
      for (int64_t x = 0; x < img.width; ++x)
        for (int64_t c = 0; c < 3; ++c)
          px[(c * H + y0 + y) * W + x0 + x] = img.samples[size_t((y * img.width + x) * 3 + c)] / 255.0f;
    for (int64_t k = 0; k < lines && k < int64_t(guesses[i].size()); ++k) {
      const Guess& g = guesses[i][size_t(k)];
      std::string text = fmt::format("{:.1f}% {}", 100 * g.probability, names.at(size_t(g.index)));
      const size_t fit = size_t(tile / 6);  // 6 pixels a glyph at scale 1
      if (text.size() > fit) text = text.substr(0, fit - 2) + "..";
      draw_text(canvas, int(x0), int(y0 + tile + 4 + k * line), text,
                k == 0 ? PlotColor{0, 0, 0} : PlotColor{0.3f, 0.3f, 0.3f});
    }
  }
  write_png(path, canvas);
}

int run_predict(const PredictOptions& o) {
  FOVEA_CHECK(o.weights.empty() != o.checkpoint.empty(),
              "predict: give either the model's weights with --weights FILE (.pth or .safetensors) or a checkpoint of "
              "fovea train with --checkpoint FILE");
  FOVEA_CHECK(!o.images.empty(), "predict: give one or more images (JPEG or PNG)");
  if (!o.grid.empty()) {
    refuse_output_over_input(o.grid, "--grid", o.weights, "--weights");
    refuse_output_over_input(o.grid, "--grid", o.checkpoint, "--checkpoint");
    for (const std::string& image : o.images) refuse_output_over_input(o.grid, "--grid", image, "");
  }
  const Device device = resolve_device(o.device, "--device");
  std::vector<std::string> names;
  data::EvalTransform transform;
  std::unique_ptr<nn::Model> model;
  std::string source;
  if (!o.checkpoint.empty()) {
    // The checkpoint's model with its own classes and the eval transform its run used (folder datasets:
    // layers/data/folder.cpp's; built-in datasets: the photo resized to the samples' size).
    const nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint);
    const Shape& sample = ckpt.meta.sample;
    FOVEA_CHECK(sample.ndim() == 3 && sample[0] == 3 && sample[1] == sample[2], "predict: checkpoint '", o.checkpoint,
                "' holds a model of ", nn::sample_shape_str(sample),
                " samples; predict classifies RGB photos (3 x S x S samples)");
    model = nn::model_from_checkpoint(ckpt, o.checkpoint);
    const nlohmann::json& rc = ckpt.meta.config;
    const bool folder = ckpt.meta.dataset == "folder" &&
                        rc.value("image_transform", std::string("torchvision")) == std::string("torchvision");
    transform.crop = sample[1];
    transform.resize = folder ? data::eval_resize_size(sample[1]) : sample[1];
    transform.mean = ckpt.meta.normalization.empty() ? std::vector<float>(3, 0.0f) : ckpt.meta.normalization.mean;
    transform.stddev = ckpt.meta.normalization.empty() ? std::vector<float>(3, 1.0f) : ckpt.meta.normalization.stddev;
    for (int64_t c = 0; c < model->classes(); ++c)
      names.push_back(size_t(c) < ckpt.meta.class_names.size() ? ckpt.meta.class_names[size_t(c)]
                                                               : fmt::format("class {}", c));
    source = o.checkpoint;
  } else {
    names = data::imagenet_classes();
    model = nn::build_model(o.model, {3, transform.crop, transform.crop}, int64_t(names.size()));
    nn::load_weights(*model, o.weights);
    source = o.weights;
  }
  const int64_t classes = int64_t(names.size());
  model->to(device);
  model->train(false);
  ops::Context ctx(device, resolve_backend(o.backend, device, "--backend"));
  FOVEA_CHECK(o.topk <= classes, "--topk ", o.topk, " is more than the ", classes, " classes");

  std::vector<std::vector<Guess>> guesses;
  std::vector<Image8> crops;
  const int64_t sample = 3 * transform.crop * transform.crop;
  for (size_t start = 0; start < o.images.size(); start += size_t(o.batch)) {
    const size_t n = std::min(o.images.size() - start, size_t(o.batch));
    std::vector<float> batch(n * size_t(sample));
    for (size_t i = 0; i < n; ++i) {
      const std::string& path = o.images[start + i];
      const Image8 rgb = data::to_rgb(data::read_image(path));
      const Tensor x = data::eval_preprocess(rgb, transform);
      std::copy_n(x.data<float>(), sample, batch.begin() + i * size_t(sample));
      if (!o.grid.empty())
        crops.push_back(
            data::center_crop(data::resize_shorter_side(rgb, transform.resize), transform.crop, transform.crop));
    }
    const Tensor x = Tensor::from_vector(batch, {int64_t(n), 3, transform.crop, transform.crop}).to(device);
    const Tensor logits = model->forward(ctx, x).y.to(kCPU);
    for (size_t i = 0; i < n; ++i) guesses.push_back(ranked(logits.data<float>() + i * size_t(classes), classes));
  }
  // With --grid /dev/stdout the PNG goes alone to stdout and the labels to stderr.
  std::FILE* out = o.grid.empty() ? stdout : messages_stream(o.grid);
  fmt::print(out, "{} with {} on {}\n", model->name(), source, device.str());
  for (size_t i = 0; i < o.images.size(); ++i) {
    fmt::print(out, "{}\n", o.images[i]);
    for (int64_t k = 0; k < o.topk; ++k) {
      const Guess& g = guesses[i][size_t(k)];
      fmt::print(out, "  {:>2}. {:7.3f}%  {:>4}  {}\n", k + 1, 100 * g.probability, g.index, names[size_t(g.index)]);
    }
  }
  if (!o.grid.empty()) {
    draw_grid(o.grid, crops, guesses, names);
    fmt::print(out, "grid: {}\n", o.grid);
  }
  return 0;
}

Command predict_command(
    "predict", "Name the objects in photos with an ImageNet classifier and torchvision's weights",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<PredictOptions>();
      app.add_option("images", o->images, "JPEG or PNG files")->required();
      app.add_option("--model", o->model,
                     "resnet18, resnet34, resnet50, vgg16 or mobilenet_v2 (torchvision's ImageNet models)")
          ->capture_default_str();
      app.add_option("--weights", o->weights,
                     "torchvision weights: a .pth written by torch.save(model.state_dict()), or safetensors");
      app.add_option("--checkpoint", o->checkpoint,
                     "instead of --model/--weights: a checkpoint of fovea train (its model, class names, image size "
                     "and normalisation)");
      app.add_option("--device", o->device, "auto, cpu, emu or cuda[:N]")->capture_default_str();
      app.add_option("--backend", o->backend, kBackendHelp)->capture_default_str()->check(one_of(kBackendNames));
      app.add_option("--topk", o->topk, "labels shown per image")->capture_default_str()->check(kPositiveInt);
      app.add_option("--batch", o->batch, "images per forward pass")->capture_default_str()->check(kPositiveInt);
      app.add_option("--grid", o->grid, "also draw each photo with its top three labels into this PNG");
      app.footer(
          "\nEach image goes through torchvision's ImageNet eval transform (resize the shorter side to 256 with\n"
          "PIL's antialiased bilinear filter, centre crop 224, ImageNet mean/std), the probabilities are the\n"
          "softmax of the logits; labels are ImageNet-1k's names in torchvision's order.\n"
          "With --checkpoint: the classes the checkpoint recorded, and the eval transform of its run (folder\n"
          "datasets: shorter side to round(S*256/224), centre crop S; --image-transform resize or a built-in\n"
          "dataset: shorter side to S, centre crop S) with its normalisation.");
      return [o] { return run_predict(*o); };
    });

}  // namespace
}  // namespace fovea::app
