// Subsets, splits, shuffling, normalisation and augmentation of datasets (CPU).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/core.h>

#include "core/parse.h"
#include "core/philox.h"
#include "layers/data/data.h"

namespace fovea::data {
namespace {

// Philox offsets: the low 4 bits say what the words are for, the epoch is above them.
constexpr uint64_t kAugmentStream = 1, kShuffleStream = 2;
constexpr uint64_t kSubsetOffset = ~uint64_t(0xF) | 3;

std::vector<int64_t> permutation_at(int64_t n, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  // Fisher-Yates; j uniform in [0, i] from 64 random bits (the bias is below 2^-40 for any n here).
  for (int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    const uint64_t w =
        (uint64_t(philox_u32(seed, offset, 2 * uint64_t(k))) << 32) | philox_u32(seed, offset, 2 * uint64_t(k) + 1);
    const int64_t j = int64_t((unsigned __int128)w * uint64_t(i + 1) >> 64);
    std::swap(p[i], p[j]);
  }
  return p;
}

int64_t sample_elems(const Tensor& images) {
  return images.numel() / std::max<int64_t>(images.size(0), 1);
}

}  // namespace

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t epoch) {
  FOVEA_CHECK(n >= 0, "permutation: argument 'n' must be >= 0, got ", n);
  return permutation_at(n, seed, (epoch << 4) | kShuffleStream);
}

Dataset select(const Dataset& ds, const std::vector<int64_t>& indices) {
  const int64_t n = int64_t(indices.size()), N = ds.size();
  if (ds.from_files()) {
    Dataset out = ds;
    auto files = std::make_shared<std::vector<std::string>>();
    out.labels = Tensor::empty({n}, DType::int64, kCPU);
    for (int64_t i = 0; i < n; ++i) {
      FOVEA_CHECK(indices[i] >= 0 && indices[i] < N, "select: index ", indices[i], " (position ", i,
                  ") is out of range for dataset '", ds.name, "' of ", N, " samples");
      files->push_back((*ds.files)[size_t(indices[i])]);
      out.labels.data<int64_t>()[i] = ds.labels.data<int64_t>()[indices[i]];
    }
    out.files = std::move(files);
    return out;
  }
  Shape s = ds.images.shape();
  s[0] = n;
  Dataset out;
  out.images = Tensor::empty(s, ds.images.dtype(), kCPU);
  out.labels = Tensor::empty({n}, DType::int64, kCPU);
  out.class_names = ds.class_names;
  out.name = ds.name;
  const size_t row = size_t(sample_elems(ds.images)) * dtype_size(ds.images.dtype());
  const char* src = static_cast<const char*>(ds.images.raw_data());
  char* dst = static_cast<char*>(out.images.raw_data());
  for (int64_t i = 0; i < n; ++i) {
    FOVEA_CHECK(indices[i] >= 0 && indices[i] < N, "select: index ", indices[i], " (position ", i,
                ") is out of range for dataset '", ds.name, "' of ", N, " samples");
    std::memcpy(dst + size_t(i) * row, src + size_t(indices[i]) * row, row);
    out.labels.data<int64_t>()[i] = ds.labels.data<int64_t>()[indices[i]];
  }
  return out;
}

Dataset subset(const Dataset& ds, int64_t n) {
  FOVEA_CHECK(n >= 0 && n <= ds.size(), "subset: argument 'n' must be in [0, ", ds.size(), "] for dataset '", ds.name,
              "', got ", n);
  if (ds.from_files()) {
    std::vector<int64_t> first(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) first[size_t(i)] = i;
    return select(ds, first);
  }
  Dataset out = ds;
  out.images = ds.images.narrow(0, n);
  out.labels = ds.labels.narrow(0, n);
  return out;
}

Dataset random_subset(const Dataset& ds, int64_t n, uint64_t seed) {
  FOVEA_CHECK(n >= 0 && n <= ds.size(), "random_subset: argument 'n' must be in [0, ", ds.size(), "] for dataset '",
              ds.name, "', got ", n);
  std::vector<int64_t> p = permutation_at(ds.size(), seed, kSubsetOffset);
  p.resize(size_t(n));
  std::sort(p.begin(), p.end());
  return select(ds, p);
}

TrainVal split_validation(const Dataset& ds, int64_t n_val, uint64_t seed) {
  FOVEA_CHECK(n_val >= 0 && n_val <= ds.size(), "split_validation: argument 'n_val' must be in [0, ", ds.size(),
              "] for dataset '", ds.name, "', got ", n_val);
  std::vector<int64_t> p = permutation_at(ds.size(), seed, kSubsetOffset);
  std::vector<int64_t> val(p.begin(), p.begin() + n_val), train(p.begin() + n_val, p.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  TrainVal out{select(ds, train), select(ds, val)};
  out.train.name = ds.name + "[train part]";
  out.val.name = ds.name + "[validation part]";
  return out;
}

Normalization channel_stats(const Dataset& ds) {
  ds.validate();
  FOVEA_CHECK(!ds.from_files(), "channel_stats: dataset '", ds.name,
              "' is a folder dataset (its images are decoded per batch; use ImageNet's mean and deviation)");
  FOVEA_CHECK(ds.size() > 0, "channel_stats: dataset '", ds.name, "' is empty");
  const bool img = ds.is_image();
  const int64_t N = ds.size(), C = img ? ds.channels() : ds.images.size(1), P = img ? ds.height() * ds.width() : 1;
  const double scale = ds.images.dtype() == DType::uint8 ? 1.0 / 255.0 : 1.0;
  std::vector<double> sum(static_cast<size_t>(C)), sq(static_cast<size_t>(C));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, q = 0;
      const int64_t base = (n * C + c) * P;
      if (ds.images.dtype() == DType::uint8) {
        const uint8_t* p = ds.images.data<uint8_t>() + base;
        for (int64_t i = 0; i < P; ++i) s += p[i], q += double(p[i]) * p[i];
      } else {
        const float* p = ds.images.data<float>() + base;
        for (int64_t i = 0; i < P; ++i) s += p[i], q += double(p[i]) * p[i];
      }
      sum[c] += s;
      sq[c] += q;
    }
  Normalization out;
  const double count = double(N) * double(P);
  for (int64_t c = 0; c < C; ++c) {
    const double m = sum[c] / count * scale;
    const double var = std::max(sq[c] / count * scale * scale - m * m, 0.0);
    out.mean.push_back(float(m));
    out.stddev.push_back(float(std::max(std::sqrt(var), 1e-6)));  // a constant channel is left unscaled-ish
  }
  return out;
}

Affine augment_affine(const Augment& aug, int64_t H, int64_t W, uint64_t seed, uint64_t epoch, int64_t index) {
  const uint64_t off = (epoch << 4) | kAugmentStream;
  const auto U = [&](int k) { return double(philox_uniform(seed, off, uint64_t(index) * 16 + uint64_t(k))); };
  double tx = 0, ty = 0;
  if (aug.pad_crop > 0) {
    const int p = aug.pad_crop;
    tx = std::min(std::floor(U(0) * (2 * p + 1)), double(2 * p)) - p;
    ty = std::min(std::floor(U(1) * (2 * p + 1)), double(2 * p)) - p;
  }
  if (aug.translate > 0) {
    tx += (2 * U(2) - 1) * aug.translate * double(W);
    ty += (2 * U(3) - 1) * aug.translate * double(H);
  }
  const bool flip = aug.hflip && U(4) < 0.5;
  const double deg = 3.14159265358979323846 / 180.0;
  const double theta = aug.rotate_deg > 0 ? (2 * U(5) - 1) * aug.rotate_deg * deg : 0.0;
  const double s = aug.zoom > 0 ? 1.0 + (2 * U(6) - 1) * aug.zoom : 1.0;
  const double sh = aug.shear_deg > 0 ? std::tan((2 * U(7) - 1) * aug.shear_deg * deg) : 0.0;
  // Forward: out = c + t + R Sh S F (in - c). Inverse: in = c + F S^-1 Sh^-1 R^-1 (out - c - t).
  const double c = std::cos(theta), si = std::sin(theta);
  const double r00 = c, r01 = si, r10 = -si, r11 = c;                       // R^-1
  double m00 = r00 - sh * r10, m01 = r01 - sh * r11, m10 = r10, m11 = r11;  // Sh^-1 R^-1
  m00 /= s, m01 /= s, m10 /= s, m11 /= s;
  if (flip) m00 = -m00, m01 = -m01;
  const double cx = double(W - 1) / 2, cy = double(H - 1) / 2;
  Affine a;
  a.a00 = float(m00);
  a.a01 = float(m01);
  a.a10 = float(m10);
  a.a11 = float(m11);
  a.a02 = float(cx - m00 * (cx + tx) - m01 * (cy + ty));
  a.a12 = float(cy - m10 * (cx + tx) - m11 * (cy + ty));
  return a;
}

void augment_batch(const Tensor& in, Tensor& out, const Augment& aug, uint64_t seed, uint64_t epoch,
                   const std::vector<int64_t>& sample_ids) {
  FOVEA_CHECK(in.defined() && in.ndim() == 4 && in.dtype() == DType::float32 && in.device().is_host_memory(),
              "augment_batch: argument 'in' must be a host float32 [B,C,H,W], got ",
              in.defined() ? in.str() : "undefined");
  FOVEA_CHECK(out.defined() && out.shape() == in.shape() && out.dtype() == DType::float32 &&
                  out.device().is_host_memory() && !out.same_memory(in),
              "augment_batch: argument 'out' must be a separate host float32 ", in.shape().str(), ", got ",
              out.defined() ? out.str() : "undefined");
  const int64_t B = in.size(0), C = in.size(1), H = in.size(2), W = in.size(3);
  FOVEA_CHECK(int64_t(sample_ids.size()) == B, "augment_batch: ", sample_ids.size(), " sample ids for a batch of ", B);
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const Affine A = augment_affine(aug, H, W, seed, epoch, sample_ids[b]);
    for (int64_t c = 0; c < C; ++c) {
      const float* plane = src + (b * C + c) * H * W;
      float* o = dst + (b * C + c) * H * W;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const float sx = A.a00 * float(x) + A.a01 * float(y) + A.a02;
          const float sy = A.a10 * float(x) + A.a11 * float(y) + A.a12;
          o[y * W + x] = sample_bilinear(plane, H, W, sx, sy, 1.0f);
        }
    }
  }
}

namespace {

// Row rows[b] of `data` [*, C, H, W] into row b of `out`, with the warp of sample ids[b].
template <typename T>
void prepare_images(const T* data, int64_t C, int64_t H, int64_t W, const int64_t* rows, const int64_t* ids,
                    int64_t count, const Augment& aug, const Normalization& norm, uint64_t seed, uint64_t epoch,
                    float scale, float* out) {
  const int64_t P = H * W;
  for (int64_t b = 0; b < count; ++b) {
    const Affine A = aug.any() ? augment_affine(aug, H, W, seed, epoch, ids[b]) : Affine{};
    const bool integral = aug.any() && affine_is_integral(A);
    for (int64_t c = 0; c < C; ++c) {
      const T* plane = data + (rows[b] * C + c) * P;
      float* o = out + (b * C + c) * P;
      const float mean = norm.empty() ? 0.0f : norm.mean[c], sd = norm.empty() ? 1.0f : norm.stddev[c];
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          o[y * W + x] = augmented_pixel(plane, H, W, A, aug.any(), integral, x, y, scale, !norm.empty(), mean, sd);
    }
  }
}

}  // namespace

void prepare_batch(const Dataset& ds, const int64_t* indices, int64_t count, const Augment& aug,
                   const Normalization& norm, uint64_t seed, uint64_t epoch, float* images, int64_t* labels) {
  FOVEA_CHECK(!ds.from_files(), "prepare_batch: dataset '", ds.name,
              "' is a folder dataset: its images are decoded by the BatchLoader");
  FOVEA_CHECK(ds.images.defined() && (ds.is_image() || ds.images.ndim() == 2), "prepare_batch: dataset '", ds.name,
              "' has images ", ds.images.defined() ? ds.images.str() : "undefined");
  const int64_t C = ds.images.size(1);
  FOVEA_CHECK(norm.empty() || (int64_t(norm.mean.size()) == C && int64_t(norm.stddev.size()) == C),
              "prepare_batch: normalisation has ", norm.mean.size(), " means and ", norm.stddev.size(),
              " deviations for ", C, " channels of dataset '", ds.name, "'");
  FOVEA_CHECK(!aug.any() || ds.is_image(), "prepare_batch: augmentation needs images [N,C,H,W]; dataset '", ds.name,
              "' has ", ds.images.str());
  for (int64_t b = 0; b < count; ++b) {
    FOVEA_CHECK(indices[b] >= 0 && indices[b] < ds.size(), "prepare_batch: index ", indices[b],
                " is out of range for dataset '", ds.name, "' of ", ds.size(), " samples");
    labels[b] = ds.labels.data<int64_t>()[indices[b]];
  }
  const bool img = ds.is_image();
  const int64_t H = img ? ds.height() : 1, W = img ? ds.width() : 1;
  if (ds.images.dtype() == DType::uint8)
    prepare_images(ds.images.data<uint8_t>(), C, H, W, indices, indices, count, aug, norm, seed, epoch, 1.0f / 255.0f,
                   images);
  else
    prepare_images(ds.images.data<float>(), C, H, W, indices, indices, count, aug, norm, seed, epoch, 1.0f, images);
}

void prepare_gathered(const uint8_t* raw, int64_t count, int64_t channels, int64_t height, int64_t width,
                      const int64_t* sample_ids, const Augment& aug, const Normalization& norm, uint64_t seed,
                      uint64_t epoch, float* images) {
  FOVEA_CHECK(norm.empty() || (int64_t(norm.mean.size()) == channels && int64_t(norm.stddev.size()) == channels),
              "prepare_gathered: normalisation has ", norm.mean.size(), " means for ", channels, " channels");
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) rows[size_t(i)] = i;
  prepare_images(raw, channels, height, width, rows.data(), sample_ids, count, aug, norm, seed, epoch, 1.0f / 255.0f,
                 images);
}

void gather_batch(const Dataset& ds, const int64_t* indices, int64_t count, const Augment& aug, uint64_t seed,
                  uint64_t epoch, void* raw, Affine* warps, int64_t* labels) {
  FOVEA_CHECK(
      !ds.from_files() && ds.is_image() && (ds.images.dtype() == DType::uint8 || ds.images.dtype() == DType::float32),
      "gather_batch: dataset '", ds.name, "' must hold uint8 or float32 images [N,C,H,W], got ",
      ds.images.defined() ? ds.images.str() : "undefined");
  const int64_t H = ds.height(), W = ds.width(), sample_bytes = ds.images.nbytes() / ds.size();
  const auto* src = static_cast<const unsigned char*>(ds.images.raw_data());
  auto* dst = static_cast<unsigned char*>(raw);
  for (int64_t b = 0; b < count; ++b) {
    const int64_t idx = indices[b];
    FOVEA_CHECK(idx >= 0 && idx < ds.size(), "gather_batch: index ", idx, " is out of range for dataset '", ds.name,
                "' of ", ds.size(), " samples");
    labels[b] = ds.labels.data<int64_t>()[idx];
    std::memcpy(dst + b * sample_bytes, src + idx * sample_bytes, size_t(sample_bytes));
    warps[b] = aug.any() ? augment_affine(aug, H, W, seed, epoch, idx) : Affine{};
  }
}

Augment parse_augment(std::string_view text, std::string_view what) {
  Augment a;
  if (text.empty() || text == "none") return a;
  if (text == "standard") {
    a.pad_crop = 4;
    a.hflip = true;
    return a;
  }
  for (std::string_view item : split(text, ',')) {
    const size_t colon = item.find(':');
    const std::string_view name = item.substr(0, colon);
    const std::string_view arg = colon == std::string_view::npos ? std::string_view() : item.substr(colon + 1);
    auto number = [&](double lo, double hi) {
      FOVEA_CHECK(!arg.empty(), what, ": '", name, "' needs a value, e.g. ", name, ":", hi / 2);
      const std::optional<double> v = try_parse_float(arg);
      FOVEA_CHECK(v, what, ": '", item, "': '", arg, "' is not a number");
      FOVEA_CHECK(*v >= lo && *v <= hi, what, ": '", item, "': value must be in [", lo, ", ", hi, "]");
      return *v;
    };
    if (name == "crop") {
      a.pad_crop = int(number(0, 64));
    } else if (name == "flip") {
      FOVEA_CHECK(arg.empty(), what, ": 'flip' takes no value");
      a.hflip = true;
    } else if (name == "translate") {
      a.translate = float(number(0, 0.5));
    } else if (name == "rotate") {
      a.rotate_deg = float(number(0, 180));
    } else if (name == "zoom") {
      a.zoom = float(number(0, 0.9));
    } else if (name == "shear") {
      a.shear_deg = float(number(0, 60));
    } else {
      FOVEA_FAIL(what, ": unknown augmentation '", item,
                 "' (expected none, standard, or a list of crop:PAD, flip, translate:FRACTION, rotate:DEGREES, "
                 "zoom:FRACTION, shear:DEGREES)");
    }
  }
  return a;
}

std::string augment_spec(const Augment& a) {
  if (!a.any()) return "none";
  std::string s;
  auto add = [&](const std::string& item) { s += (s.empty() ? "" : ",") + item; };
  if (a.pad_crop > 0) add(fmt::format("crop:{}", a.pad_crop));
  if (a.hflip) add("flip");
  if (a.translate > 0) add(fmt::format("translate:{}", a.translate));
  if (a.rotate_deg > 0) add(fmt::format("rotate:{}", a.rotate_deg));
  if (a.zoom > 0) add(fmt::format("zoom:{}", a.zoom));
  if (a.shear_deg > 0) add(fmt::format("shear:{}", a.shear_deg));
  return s;
}

}  // namespace fovea::data
