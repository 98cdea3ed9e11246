// PNG images as float tensors [C,H,W] with values in [0,1] (sample / (2^bits - 1); no gamma or
// colour management: the stored sample values, as a network sees them).
#pragma once
#include <string>

#include "core/image8.h"
#include "core/tensor.h"

namespace fovea {

struct PngImage {
  Tensor pixels;           // float32 [C,H,W] on the CPU; C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  bool has_alpha = false;  // the last channel is alpha (C == 2 or 4)
  int bit_depth = 8;       // of the file's samples after expansion: 8 or 16
};

// Reads every PNG colour type: grey (1/2/4-bit grey is expanded to 8-bit), grey+alpha, RGB, RGBA,
// palette (expanded to RGB, or RGBA when it has transparency); a tRNS chunk on grey/RGB becomes an
// alpha channel. Images larger than 2^16 in either dimension or 1 GiB of samples are refused.
// Errors (missing file, not a PNG, corrupt or truncated data) name the file.
PngImage read_png(const std::string& path);
PngImage decode_png(const std::string& bytes, const std::string& name);
// The same images as 8-bit samples (for the preprocessing that must match PIL, layers/data/image.h):
// grey, grey_alpha, rgb or rgba; 16-bit samples keep their high byte, as PIL does for 16-bit RGB(A).
Image8 decode_png8(const std::string& bytes, const std::string& name);
bool looks_like_png(const std::string& bytes);

// Writes float [C,H,W] (C = 1, 2, 3, 4 as above) or [H,W] (grey) from any host device; values are
// clamped to [0,1] (NaN -> 0) and rounded to 8 or 16 bits. Atomic (temporary file + rename).
void write_png(const std::string& path, const Tensor& image, int bit_depth = 8);
std::string encode_png(const Tensor& image, int bit_depth = 8);

}  // namespace fovea
