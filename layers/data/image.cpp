#include "layers/data/image.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/io.h"
#include "core/jpeg_io.h"
#include "core/png_io.h"

namespace fovea::data {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s).substr(0, prefix.size()) == prefix;
}

// For the error message: a format fovea does not read, recognised by its signature.
const char* other_format(const std::string& b) {
  using namespace std::string_view_literals;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return "GIF";
  if (starts_with(b, "BM")) return "BMP";
  if (starts_with(b, "II*\0"sv) || starts_with(b, "MM\0*"sv)) return "TIFF";
  if (b.size() >= 12 && starts_with(b, "RIFF") && b.compare(8, 4, "WEBP") == 0) return "WebP";
  return nullptr;
}

// PIL's fixed point for 8-bit resampling: weights scaled by 2^22, sums rounded by adding half.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The weights of one resampling pass from `in` to `out` samples along an axis, as PIL computes them:
// output sample i covers source samples [first[i], first[i] + count[i]) with weights w[i * ksize + j].
struct Pass {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> w;
};

Pass bilinear_pass(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double filterscale = std::max(scale, 1.0);  // downscaling widens the filter: antialiasing
  const double support = 1.0 * filterscale;         // the triangle's support is 1 source pixel
  Pass p;
  p.ksize = int64_t(std::ceil(support)) * 2 + 1;
  p.first.resize(size_t(out));
  p.count.resize(size_t(out));
  p.w.assign(size_t(out * p.ksize), 0);
  std::vector<double> k(size_t(p.ksize));
  for (int64_t i = 0; i < out; ++i) {
    const double center = (double(i) + 0.5) * scale;
    const double inv = 1.0 / filterscale;
    // PIL rounds the window ends by adding 0.5 and truncating toward zero (int conversion).
    const int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(int64_t(center + support + 0.5), in);
    const int64_t n = hi - lo;
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double x = std::abs((double(j + lo) - center + 0.5) * inv);
      k[size_t(j)] = x < 1.0 ? 1.0 - x : 0.0;
      sum += k[size_t(j)];
    }
    for (int64_t j = 0; j < n; ++j) {
      const double v = sum != 0.0 ? k[size_t(j)] / sum : k[size_t(j)];
      // Round half away from zero to 22-bit fixed point (the weights are never negative for bilinear).
      p.w[size_t(i * p.ksize + j)] =
          int32_t(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    p.first[size_t(i)] = lo;
    p.count[size_t(i)] = n;
  }
  return p;
}

// The rounded, clamped 8-bit value of a fixed-point sum that started at one half.
uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, also for negative sums
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

Image8 horizontal(const Image8& src, int64_t out_w) {
  const Pass p = bilinear_pass(src.width, out_w);
  const int64_t C = src.channels();
  Image8 dst;
  dst.width = out_w;
  dst.height = src.height;
  dst.colour = src.colour;
  dst.samples.resize(size_t(out_w * src.height * C));
  for (int64_t y = 0; y < src.height; ++y) {
    const uint8_t* row = src.samples.data() + y * src.width * C;
    for (int64_t x = 0; x < out_w; ++x) {
      const int32_t* w = p.w.data() + x * p.ksize;
      const int64_t first = p.first[size_t(x)], n = p.count[size_t(x)];
      for (int64_t c = 0; c < C; ++c) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int64_t j = 0; j < n; ++j) acc += int32_t(row[(first + j) * C + c]) * w[j];
        dst.samples[size_t((y * out_w + x) * C + c)] = clip8(acc);
      }
    }
  }
  return dst;
}

Image8 vertical(const Image8& src, int64_t out_h) {
  const Pass p = bilinear_pass(src.height, out_h);
  const int64_t C = src.channels(), stride = src.width * C;
  Image8 dst;
  dst.width = src.width;
  dst.height = out_h;
  dst.colour = src.colour;
  dst.samples.resize(size_t(out_h * stride));
  for (int64_t y = 0; y < out_h; ++y) {
    const int32_t* w = p.w.data() + y * p.ksize;
    const uint8_t* base = src.samples.data() + p.first[size_t(y)] * stride;
    const int64_t n = p.count[size_t(y)];
    for (int64_t i = 0; i < stride; ++i) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (int64_t j = 0; j < n; ++j) acc += int32_t(base[j * stride + i]) * w[j];
      dst.samples[size_t(y * stride + i)] = clip8(acc);
    }
  }
  return dst;
}

// Python's round() of d / 2 for d >= 0: half to even.
int64_t half_round_even(int64_t d) {
  const int64_t q = d / 2;
  return d % 2 == 0 || q % 2 == 0 ? q : q + 1;
}

void check_image(const Image8& img, const char* what) {
  FOVEA_CHECK(img.width > 0 && img.height > 0 && img.samples.size() == size_t(img.width * img.height * img.channels()),
              what, ": image of ", img.width, "x", img.height, " with ", img.channels(), " channels holds ",
              img.samples.size(), " samples");
}

}  // namespace

Image8 decode_image(const std::string& bytes, const std::string& name) {
  if (looks_like_jpeg(bytes)) return decode_jpeg(bytes, name);
  if (looks_like_png(bytes)) return decode_png8(bytes, name);
  if (const char* other = other_format(bytes))
    FOVEA_FAIL("image file '", name, "': a ", other, " file; fovea reads JPEG and PNG images");
  FOVEA_FAIL("image file '", name, "': not a JPEG or PNG image (",
             bytes.empty() ? "the file is empty" : "no JPEG or PNG signature at its start", ")");
}

Image8 read_image(const std::string& path) {
  return decode_image(read_file(path), path);
}

Image8 to_rgb(const Image8& img) {
  check_image(img, "to_rgb");
  if (img.colour == ImageColour::rgb) return img;
  Image8 out;
  out.width = img.width;
  out.height = img.height;
  out.colour = ImageColour::rgb;
  const size_t n = size_t(img.width * img.height);
  out.samples.resize(n * 3);
  const uint8_t* s = img.samples.data();
  uint8_t* d = out.samples.data();
  const size_t C = size_t(img.channels());
  for (size_t i = 0; i < n; ++i, s += C, d += 3) {
    switch (img.colour) {
      case ImageColour::grey:
      case ImageColour::grey_alpha: d[0] = d[1] = d[2] = s[0]; break;
      case ImageColour::rgba: d[0] = s[0], d[1] = s[1], d[2] = s[2]; break;
      case ImageColour::cmyk: {
        // PIL reads JPEG CMYK as inverted ("CMYK;I"): ink = 255 - stored. Then, with nk = 255 - K,
        // channel = nk - nk * ink / 255, the product divided by 255 with PIL's rounding.
        const int nk = s[3];
        for (int c = 0; c < 3; ++c) {
          const int t = (255 - s[c]) * nk + 128;
          d[c] = uint8_t(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
        }
        break;
      }
      case ImageColour::rgb: break;
    }
  }
  return out;
}

Image8 resize_bilinear_pil(const Image8& img, int64_t width, int64_t height) {
  check_image(img, "resize_bilinear_pil");
  FOVEA_CHECK(width > 0 && height > 0 && width <= (int64_t(1) << 16) && height <= (int64_t(1) << 16),
              "resize_bilinear_pil: output size ", width, "x", height, " must be 1 to 65536 per side");
  // As PIL: each pass only when its size changes (the horizontal one first).
  Image8 out = width != img.width ? horizontal(img, width) : img;
  if (height != img.height) out = vertical(out, height);
  return out;
}

std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size) {
  FOVEA_CHECK(height > 0 && width > 0 && size > 0, "resize: image ", width, "x", height, " to shorter side ", size,
              ": sizes must be positive");
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  const int64_t new_longer = int64_t(double(size * longer) / double(shorter));  // Python: int(size * long / short)
  return width <= height ? std::pair{new_longer, size} : std::pair{size, new_longer};
}

Image8 resize_shorter_side(const Image8& img, int64_t size) {
  const auto [h, w] = shorter_side_size(img.height, img.width, size);
  return resize_bilinear_pil(img, w, h);
}

Image8 center_crop(const Image8& img, int64_t height, int64_t width) {
  check_image(img, "center_crop");
  FOVEA_CHECK(height > 0 && width > 0, "center_crop: crop ", width, "x", height, " must be positive");
  // The source offset of the crop's first row (column): negative when the side is padded.
  const auto offset = [](int64_t in, int64_t out) { return out > in ? -((out - in) / 2) : half_round_even(in - out); };
  const int64_t top = offset(img.height, height), left = offset(img.width, width), C = img.channels();
  Image8 out;
  out.width = width;
  out.height = height;
  out.colour = img.colour;
  out.samples.assign(size_t(width * height * C), 0);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(width, img.width - left);
    if (x1 > x0)
      std::copy_n(img.samples.data() + (sy * img.width + x0 + left) * C, (x1 - x0) * C,
                  out.samples.data() + (y * width + x0) * C);
  }
  return out;
}

Image8 resized_crop(const Image8& img, int64_t top, int64_t left, int64_t height, int64_t width, int64_t size) {
  check_image(img, "resized_crop");
  FOVEA_CHECK(
      top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= img.height && left + width <= img.width,
      "resized_crop: region ", width, "x", height, " at (", left, ", ", top, ") is not inside the ", img.width, "x",
      img.height, " image");
  Image8 out;
  out.width = width;
  out.height = height;
  out.colour = img.colour;
  const int64_t C = img.channels();
  out.samples.resize(size_t(width * height * C));
  for (int64_t y = 0; y < height; ++y)
    std::copy_n(img.samples.data() + ((top + y) * img.width + left) * C, width * C, out.samples.data() + y * width * C);
  return resize_bilinear_pil(out, size, size);
}

Tensor to_normalized_tensor(const Image8& img, const std::vector<float>& mean, const std::vector<float>& stddev) {
  check_image(img, "to_normalized_tensor");
  const int64_t C = img.channels(), H = img.height, W = img.width;
  FOVEA_CHECK(int64_t(mean.size()) == C && int64_t(stddev.size()) == C, "to_normalized_tensor: ", C, " channels but ",
              mean.size(), " means and ", stddev.size(), " standard deviations");
  for (float s : stddev) FOVEA_CHECK(s > 0.0f, "to_normalized_tensor: standard deviation ", s, " must be > 0");
  Tensor t = Tensor::empty({C, H, W}, DType::float32, kCPU);
  float* d = t.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < H * W; ++i) {
      const float x = float(img.samples[size_t(i * C + c)]) / 255.0f;
      d[c * H * W + i] = (x - mean[size_t(c)]) / stddev[size_t(c)];
    }
  return t;
}

Tensor eval_preprocess(const Image8& rgb, const EvalTransform& t) {
  FOVEA_CHECK(rgb.colour == ImageColour::rgb, "eval_preprocess: the image must be RGB (use to_rgb)");
  return to_normalized_tensor(center_crop(resize_shorter_side(rgb, t.resize), t.crop, t.crop), t.mean, t.stddev);
}

Tensor load_eval_image(const std::string& path, const EvalTransform& t) {
  return eval_preprocess(to_rgb(read_image(path)), t);
}

}  // namespace fovea::data
