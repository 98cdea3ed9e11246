#include "layers/ops/image_filters.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "core/io.h"
#include "core/parse.h"

namespace fovea::filters {
namespace {

constexpr int64_t kMaxKernelSide = 63;

Kernel make_kernel(int64_t rows, int64_t cols, std::vector<float> values, float scale = 1.0f) {
  for (float& v : values) v *= scale;
  return Kernel{rows, cols, std::move(values)};
}

// The named linear kernels, written for TRUE convolution (the Sobel and emboss kernels are the
// textbook ones: sobel-x is positive where brightness increases to the right).
struct Entry {
  const char* name;
  const char* description;
};
const Entry kEntries[] = {
    {"sobel-x",
     "horizontal gradient (vertical edges), [1 0 -1; 2 0 -2; 1 0 -1]: positive where the image gets brighter to the "
     "right"},
    {"sobel-y",
     "vertical gradient (horizontal edges), [1 2 1; 0 0 0; -1 -2 -1]: positive where the image gets brighter "
     "downwards"},
    {"sobel-magnitude", "edge strength sqrt(sobel-x^2 + sobel-y^2)"},
    {"laplacian", "second derivative, [0 1 0; 1 -4 1; 0 1 0]: zero on flat areas and linear ramps"},
    {"outline", "edges of every direction, [-1 -1 -1; -1 8 -1; -1 -1 -1]"},
    {"emboss", "relief, [-2 -1 0; -1 1 1; 0 1 2]"},
    {"sharpen", "the image plus its negative Laplacian, [0 -1 0; -1 5 -1; 0 -1 0]"},
    {"box-blur", "3x3 mean, every weight 1/9"},
    {"gaussian", "5x5 Gaussian blur, the outer product of [1 4 6 4 1] / 256"},
    {"identity", "copies the image, [0 0 0; 0 1 0; 0 0 0]"},
};

Kernel kernel_of(std::string_view name) {
  if (name == "sobel-x") return make_kernel(3, 3, {1, 0, -1, 2, 0, -2, 1, 0, -1});
  if (name == "sobel-y") return make_kernel(3, 3, {1, 2, 1, 0, 0, 0, -1, -2, -1});
  if (name == "laplacian") return make_kernel(3, 3, {0, 1, 0, 1, -4, 1, 0, 1, 0});
  if (name == "outline") return make_kernel(3, 3, {-1, -1, -1, -1, 8, -1, -1, -1, -1});
  if (name == "emboss") return make_kernel(3, 3, {-2, -1, 0, -1, 1, 1, 0, 1, 2});
  if (name == "sharpen") return make_kernel(3, 3, {0, -1, 0, -1, 5, -1, 0, -1, 0});
  if (name == "box-blur") return make_kernel(3, 3, std::vector<float>(9, 1.0f), 1.0f / 9.0f);
  if (name == "identity") return make_kernel(3, 3, {0, 0, 0, 0, 1, 0, 0, 0, 0});
  if (name == "gaussian") {
    const float g[5] = {1, 4, 6, 4, 1};
    std::vector<float> v;
    for (float a : g)
      for (float b : g) v.push_back(a * b / 256.0f);  // exact in float: small integers / 2^8
    return make_kernel(5, 5, std::move(v));
  }
  return {};
}

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::vector<std::string> tokens(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',') {
      if (!cur.empty()) out.push_back(cur), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

Kernel Kernel::flipped() const {
  Kernel k{rows, cols, std::vector<float>(values.rbegin(), values.rend())};  // reversing row-major = 180 degrees
  return k;
}

const std::vector<NamedFilterInfo>& named_filters() {
  static const std::vector<NamedFilterInfo> all = [] {
    std::vector<NamedFilterInfo> v;
    for (const Entry& e : kEntries) v.push_back({e.name, e.description});
    return v;
  }();
  return all;
}

Filter named_filter(std::string_view name) {
  if (name == "sobel-magnitude") return Filter{"sobel-magnitude", {kernel_of("sobel-x"), kernel_of("sobel-y")}, true};
  Kernel k = kernel_of(name);
  if (k.rows == 0) {
    std::string known;
    for (const NamedFilterInfo& f : named_filters()) known += (known.empty() ? "" : ", ") + f.name;
    FOVEA_FAIL("filter: unknown kernel '", name, "'; the named kernels are ", known, " (or give --kernel-file FILE)");
  }
  return Filter{std::string(name), {std::move(k)}, false};
}

Filter as_correlation(Filter f) {
  for (Kernel& k : f.kernels) k = k.flipped();
  return f;
}

Kernel parse_kernel(const std::string& text, const std::string& source) {
  std::vector<std::vector<float>> rows;
  double scale = 1.0;
  bool first = true;
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    const std::string where = cat("kernel file '", source, "', line ", line_no, ": ");
    std::vector<std::string> t = tokens(line);
    // The optional scale line: "1/16" or "scale X" (either "X" a number or a fraction).
    const bool scale_word = t[0] == "scale";
    const bool fraction = t.size() == 1 && t[0].find('/') != std::string::npos;
    if (scale_word || fraction) {
      FOVEA_CHECK(first, where, "a scale ('", line, "') may only be the first line, before the kernel rows");
      FOVEA_CHECK(!scale_word || t.size() == 2, where, "write the scale as 'scale X' or as a fraction like 1/16, got '",
                  line, "'");
      const std::string_view s = scale_word ? t[1] : t[0];
      const size_t slash = s.find('/');
      const std::optional<double> num = try_parse_float(s.substr(0, slash));
      const std::optional<double> den = slash == std::string::npos ? 1.0 : try_parse_float(s.substr(slash + 1));
      FOVEA_CHECK(num && den, where, "the scale '", s, "' is not a number or a fraction like 1/16");
      FOVEA_CHECK(*den != 0, where, "the scale '", s, "' divides by zero");
      scale = *num / *den;
      FOVEA_CHECK(std::isfinite(scale), where, "the scale '", s, "' is not finite");
      first = false;
      continue;
    }
    first = false;
    std::vector<float> row;
    for (const std::string& tok : t) {
      const std::optional<double> v = try_parse_float(tok);
      FOVEA_CHECK(v, where, "'", tok, "' is not a number (kernel rows hold numbers separated by spaces or commas)");
      FOVEA_CHECK(std::isfinite(float(*v)), where, "'", tok, "' is too large for a float");
      row.push_back(float(*v));
    }
    FOVEA_CHECK(rows.empty() || row.size() == rows[0].size(), where, "this row has ", row.size(),
                " numbers but the first row has ", rows[0].size(), " (every row must have the same length)");
    rows.push_back(std::move(row));
  }
  FOVEA_CHECK(!rows.empty(), "kernel file '", source, "': no kernel rows (write the kernel as rows of numbers)");
  const int64_t R = int64_t(rows.size()), S = int64_t(rows[0].size());
  FOVEA_CHECK(R % 2 == 1 && S % 2 == 1, "kernel file '", source, "': the kernel is ", R, "x", S,
              " but must have an odd number of rows and columns (it needs a centre pixel)");
  FOVEA_CHECK(R <= kMaxKernelSide && S <= kMaxKernelSide, "kernel file '", source, "': the kernel is ", R, "x", S,
              ", larger than the limit of ", kMaxKernelSide, "x", kMaxKernelSide);
  std::vector<float> values;
  for (const auto& r : rows)
    for (float v : r) {
      values.push_back(float(double(v) * scale));
      FOVEA_CHECK(std::isfinite(values.back()), "kernel file '", source, "': value ", v, " times the scale ", scale,
                  " is not a finite float");
    }
  return Kernel{R, S, std::move(values)};
}

Kernel read_kernel_file(const std::string& path) {
  return parse_kernel(read_file(path), path);
}

ValueMode parse_value_mode(std::string_view text) {
  if (text == "clamp") return ValueMode::clamp;
  if (text == "normalize" || text == "normalise") return ValueMode::normalize;
  if (text == "abs") return ValueMode::abs;
  FOVEA_FAIL("filter: value mode must be clamp, normalize or abs, got '", text, "'");
}

Tensor convolve_planes(ops::Context& ctx, const Tensor& planes, const Kernel& k) {
  FOVEA_CHECK(
      planes.defined() && planes.ndim() == 3 && planes.dtype() == DType::float32 && planes.device().is_host_memory(),
      "convolve_planes: planes must be a host float32 [N,H,W] tensor, got ",
      planes.defined() ? planes.str() : std::string("an undefined tensor"));
  FOVEA_CHECK(
      k.rows > 0 && k.cols > 0 && k.rows % 2 == 1 && k.cols % 2 == 1 && int64_t(k.values.size()) == k.rows * k.cols,
      "convolve_planes: the kernel must be odd-sized with rows*cols values, got ", k.rows, "x", k.cols, " with ",
      k.values.size(), " values");
  const int64_t N = planes.size(0), H = planes.size(1), W = planes.size(2);
  if (ctx.device.type == DeviceType::cpu) {
    Tensor x = planes.device() == kCPU ? planes : planes.to(kCPU);
    Tensor y = Tensor::empty({N, H, W});
    for (int64_t n = 0; n < N; ++n)
      ops::filter2d_forward_stub(Exec{kCPU}, H, W, x.data<float>() + n * H * W, k.rows, k.cols, k.values.data(),
                                 y.data<float>() + n * H * W);
    return y;
  }
  // Our conv2d correlates, so it gets the flipped kernel; the planes go through as a batch of N
  // one-channel images (explicit copies to and from the device).
  const Tensor x = planes.reshape({N, 1, H, W}).to(ctx.device);
  const Tensor w = Tensor::from_vector(k.flipped().values, {1, 1, k.rows, k.cols}, ctx.device);
  ops::Conv2dAttrs a;
  a.pad_h = k.rows / 2;
  a.pad_w = k.cols / 2;
  const Tensor y = ops::conv2d_forward(ctx, x, w, Tensor(), a);
  return y.to(kCPU).reshape({N, H, W});
}

Tensor apply_filter(ops::Context& ctx, const Tensor& planes, const Filter& f) {
  FOVEA_CHECK(!f.kernels.empty(), "filter '", f.name, "': no kernels");
  if (!f.magnitude) {
    FOVEA_CHECK(f.kernels.size() == 1, "filter '", f.name, "': ", f.kernels.size(),
                " kernels but it is not a magnitude filter");
    return convolve_planes(ctx, planes, f.kernels[0]);
  }
  Tensor sum = Tensor::zeros(planes.shape());
  float* s = sum.data<float>();
  for (const Kernel& k : f.kernels) {
    const Tensor g = convolve_planes(ctx, planes, k);
    const float* gp = g.data<float>();
    for (int64_t i = 0; i < g.numel(); ++i) s[i] += gp[i] * gp[i];
  }
  for (int64_t i = 0; i < sum.numel(); ++i) s[i] = std::sqrt(s[i]);
  return sum;
}

Tensor filter_image(ops::Context& ctx, const Tensor& image, bool has_alpha, const Filter& f, ValueMode mode) {
  FOVEA_CHECK(image.defined() && (image.ndim() == 2 || image.ndim() == 3) && image.dtype() == DType::float32 &&
                  image.device().is_host_memory(),
              "filter: the image must be a host float32 [C,H,W] or [H,W] tensor, got ",
              image.defined() ? image.str() : std::string("an undefined tensor"));
  const Tensor img = image.ndim() == 2 ? image.reshape({1, image.size(0), image.size(1)}) : image;
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  const int64_t colour = has_alpha ? C - 1 : C;
  FOVEA_CHECK(colour >= 1, "filter: an image with ", C, " channel(s)", has_alpha ? " including alpha" : "",
              " has no colour channel to filter");
  Tensor out = apply_filter(ctx, img.narrow(0, colour).to(kCPU), f);
  float* o = out.data<float>();
  const int64_t n = out.numel();
  if (mode == ValueMode::normalize) {
    float lo = o[0], hi = o[0];
    for (int64_t i = 1; i < n; ++i) lo = std::min(lo, o[i]), hi = std::max(hi, o[i]);
    if (hi > lo) {
      const float inv = 1.0f / (hi - lo);
      for (int64_t i = 0; i < n; ++i) o[i] = (o[i] - lo) * inv;
    }
  } else if (mode == ValueMode::abs) {
    for (int64_t i = 0; i < n; ++i) o[i] = std::fabs(o[i]);
  }
  for (int64_t i = 0; i < n; ++i) o[i] = std::clamp(o[i], 0.0f, 1.0f);
  if (!has_alpha) return image.ndim() == 2 ? out.reshape({H, W}) : out;
  Tensor result = Tensor::empty({C, H, W});
  std::copy(o, o + n, result.data<float>());
  const Tensor alpha = img.narrow(colour, 1).to(kCPU);
  std::copy(alpha.data<float>(), alpha.data<float>() + H * W, result.data<float>() + n);
  return result;
}

}  // namespace fovea::filters
