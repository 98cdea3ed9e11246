#include "layers/train/evaluation.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "layers/data/loader.h"
#include "layers/ops/metrics.h"

namespace fovea::nn {

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> out;
  for (size_t c = 0; c < confusion.size(); ++c) {
    int64_t total = 0;
    for (int64_t v : confusion[c]) total += v;
    out.push_back(total ? double(confusion[c][c]) / double(total) : NAN);
  }
  return out;
}

EvalResult evaluate(Model& model, ops::Context& ctx, const data::Dataset& ds, const data::Normalization& norm,
                    int64_t batch, const std::function<void(int64_t done, int64_t total)>& progress) {
  FOVEA_ASSERT(batch > 0, "evaluate: batch ", batch);
  const bool was_training = model.training();
  model.train(false);
  data::LoaderOptions lo;
  lo.batch_size = std::min(batch, std::max<int64_t>(ds.size(), 1));  // buffers sized by the data, not the flag
  lo.shuffle = false;
  lo.normalization = norm;
  lo.prefetch = 1;
  data::BatchLoader loader(ds, lo);
  loader.start_epoch(0);
  const int64_t C = model.classes();
  Tensor sums = ops::metric_sums(ctx);
  Tensor confusion = Tensor::zeros({C, C}, DType::int64, ctx.device, ctx.stream);
  EvalResult r;
  data::Batch b;
  while (loader.next(b)) {
    const int64_t n = b.labels.numel();
    const int64_t* labels = b.labels.data<int64_t>();  // the host copy: checked before it goes anywhere
    for (int64_t i = 0; i < n; ++i)
      FOVEA_CHECK(labels[i] >= 0 && labels[i] < C, "evaluate: label ", labels[i], " of dataset '", ds.name,
                  "' is outside the model's ", C, " classes");
    const Tensor x = ctx.device == kCPU ? b.images : b.images.upload(ctx.device, ctx.stream);
    const Tensor y = ctx.device == kCPU ? b.labels : b.labels.upload(ctx.device, ctx.stream);
    Output out = model.forward(ctx, x);
    ops::CrossEntropyOut ce = ops::cross_entropy(ctx, out.y, y, 0.0f);
    ops::accumulate_metrics(ctx, ce.loss, out.y, y, sums, r.count, &confusion);
    r.count += n;
    if (progress) progress(std::min(r.count + loader.stats().skipped_images, ds.size()), ds.size());
  }
  model.train(was_training);
  r.skipped = loader.stats().skipped_images;
  const ops::MetricSums s = ops::read_metric_sums(ctx, sums);
  const std::vector<int64_t> cells = confusion.to_vector<int64_t>(ctx.stream);
  r.confusion.assign(size_t(C), std::vector<int64_t>(size_t(C), 0));
  for (int64_t t = 0; t < C; ++t)
    for (int64_t p = 0; p < C; ++p) r.confusion[size_t(t)][size_t(p)] = cells[size_t(t * C + p)];
  r.loss = r.count ? s.loss_sum / double(r.count) : NAN;
  r.accuracy = r.count ? double(s.correct) / double(r.count) : NAN;
  return r;
}

data::Dataset shift_images(const data::Dataset& ds, int dx, int dy) {
  FOVEA_CHECK(ds.is_image() && !ds.from_files(), "shift_images: dataset '", ds.name, "' has no images in memory");
  data::Dataset out = ds;
  out.images = Tensor::zeros(ds.images.shape(), ds.images.dtype(), kCPU);
  const int64_t planes = ds.size() * ds.channels(), H = ds.height(), W = ds.width();
  const size_t es = dtype_size(ds.images.dtype());
  const auto* src = static_cast<const unsigned char*>(ds.images.raw_data());
  auto* dst = static_cast<unsigned char*>(out.images.raw_data());
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y - dy;
      if (sy < 0 || sy >= H) continue;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = x - dx;
        if (sx < 0 || sx >= W) continue;
        std::memcpy(dst + ((p * H + y) * W + x) * es, src + ((p * H + sy) * W + sx) * es, es);
      }
    }
  out.name = fmt::format("{} shifted ({}, {})", ds.name, dx, dy);
  return out;
}

}  // namespace fovea::nn
