// Classic image filters (edge detectors, blurs, sharpening) run through fovea's convolution:
// `fovea filter` and the README pictures.
//
// Convolution here is TRUE convolution, as in image processing and signal processing books: the
// kernel is rotated by 180 degrees before it slides over the image,
//   y[i][j] = sum_{a,b} k[a][b] * x[i + R/2 - a][j + S/2 - b]        (zero padding, same size)
// while a CNN's conv2d (PyTorch's, cuDNN's, ours) is a CORRELATION: y[i][j] = sum k[a][b] * x[i-R/2+a][j-S/2+b].
// The two differ only for kernels that are not symmetric under that rotation (sobel-x/y, emboss):
// correlating with k is convolving with flipped(k). Device cpu runs filter2d_forward_stub (the reference's
// true convolution, cpu_reference/filter2d.cpp); devices emu and cuda run ops::conv2d_forward (our kernels)
// with the flipped kernel and padding R/2, S/2, which gives the same numbers.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "layers/ops/ops.h"

namespace fovea::ops {
// True convolution of one image x [H, W] with an odd-sized kernel k [R, S], zero padding, same size (slot cpu).
inline constinit DispatchStub<void(const Exec&, int64_t H, int64_t W, const float* x, int64_t R, int64_t S,
                                   const float* k, float* y)>
    filter2d_forward_stub{"filter2d_forward"};
}  // namespace fovea::ops

namespace fovea::filters {

// An odd-sized 2-D kernel, row-major, for true convolution.
struct Kernel {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // rows * cols

  float at(int64_t a, int64_t b) const { return values[size_t(a * cols + b)]; }
  // Rotated by 180 degrees: convolving with k == correlating with k.flipped().
  Kernel flipped() const;
};

// A filter: one kernel (linear filters) or several whose results are combined as the square root
// of the sum of their squares (sobel-magnitude: sqrt(gx^2 + gy^2), the gradient's length).
struct Filter {
  std::string name;
  std::vector<Kernel> kernels;
  bool magnitude = false;
};

struct NamedFilterInfo {
  std::string name, description;
};
// sobel-x, sobel-y, sobel-magnitude, laplacian, outline, emboss, sharpen, box-blur, gaussian, identity.
const std::vector<NamedFilterInfo>& named_filters();
// The named filter; an unknown name is an error that lists the known ones.
Filter named_filter(std::string_view name);
// The same filter as a correlation: every kernel flipped.
Filter as_correlation(Filter f);

// Custom kernel text:
//   - '#' starts a comment that runs to the end of the line; blank lines are skipped;
//   - an optional first line holds the scale that multiplies every value: a fraction "1/16" or
//     "scale X" ("scale 0.0625");
//   - then the rows of the kernel: numbers separated by spaces, tabs or commas, every row the same
//     length; an odd number of rows and of columns (the kernel has a centre), at most 63 x 63.
// Errors name `source` (the file), the line and what is wrong.
Kernel parse_kernel(const std::string& text, const std::string& source);
Kernel read_kernel_file(const std::string& path);

// Output values outside [0,1] (edge filters give negative values, sharpening overshoots):
enum class ValueMode {
  clamp,      // clamp to [0,1] (the default): negative values become black
  normalize,  // min..max of the filtered colour channels (all together) mapped to 0..1; a constant
              // result is clamped instead
  abs,        // |v| clamped to [0,1]: edges of both signs show bright
};
ValueMode parse_value_mode(std::string_view text);  // "clamp" | "normalize" (or "normalise") | "abs"

// Filters planes [N,H,W] (float32, host) with one kernel on ctx's device; returns host [N,H,W].
Tensor convolve_planes(ops::Context& ctx, const Tensor& planes, const Kernel& k);
// The whole filter (one kernel, or the magnitude of several) on planes [N,H,W]; host in and out.
Tensor apply_filter(ops::Context& ctx, const Tensor& planes, const Filter& f);
// An image [C,H,W] (host float32, as read_png gives it): each colour channel filtered separately,
// values mapped by `mode`, the alpha channel (the last, when has_alpha) copied unchanged.
Tensor filter_image(ops::Context& ctx, const Tensor& image, bool has_alpha, const Filter& f,
                    ValueMode mode = ValueMode::clamp);

}  // namespace fovea::filters
