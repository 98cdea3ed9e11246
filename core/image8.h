// 8-bit images as decoders hand them over: samples interleaved row by row ([H][W][C]), the layout
// of PIL and of the codecs, which the preprocessing (layers/data/image.h) works on before anything
// becomes a float tensor.
#pragma once
#include <cstdint>
#include <vector>

namespace fovea {

enum class ImageColour : uint8_t {
  grey,        // 1 channel
  grey_alpha,  // 2 channels
  rgb,         // 3 channels
  rgba,        // 4 channels
  cmyk,        // 4 channels, Adobe's inverted convention (0 = full ink), as JPEG files store CMYK
};

inline int channels_of(ImageColour c) {
  switch (c) {
    case ImageColour::grey: return 1;
    case ImageColour::grey_alpha: return 2;
    case ImageColour::rgb: return 3;
    case ImageColour::rgba:
    case ImageColour::cmyk: return 4;
  }
  return 0;
}

struct Image8 {
  int64_t width = 0, height = 0;
  ImageColour colour = ImageColour::rgb;
  std::vector<uint8_t> samples;  // height * width * channels()
  int channels() const { return channels_of(colour); }
};

}  // namespace fovea
