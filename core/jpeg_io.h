// JPEG decoding with libjpeg-turbo, set up as PIL sets it up (integer IDCT, fancy upsampling; the
// library's defaults), so that the same file gives the same pixels in fovea and in PIL.
#pragma once
#include <string>

#include "core/image8.h"

namespace fovea {

// Greyscale files decode to grey, YCbCr and RGB files to rgb, CMYK and YCCK files to cmyk (as stored:
// Adobe's inverted convention). Images of more than 2^28 samples are refused before anything is
// allocated for them, as are progressive files of more than 1000 scans. A file that ends before its
// image does, or that libjpeg cannot decode, is an error naming the file; the warnings libjpeg
// gives for recoverable damage are ignored, as PIL ignores them.
Image8 decode_jpeg(const std::string& bytes, const std::string& name);
Image8 read_jpeg(const std::string& path);

// True if `bytes` starts with a JPEG start-of-image marker.
bool looks_like_jpeg(const std::string& bytes);

}  // namespace fovea
