// Images from files into network inputs, as torchvision does it for ImageNet classifiers:
//
//   Image.open(f).convert("RGB")     decode_image() + to_rgb()
//   transforms.Resize(256)           resize_shorter_side(): PIL's antialiased bilinear filter
//   transforms.CenterCrop(224)       center_crop()
//   transforms.ToTensor()            to_normalized_tensor(): sample / 255
//   transforms.Normalize(mean, std)    then (x - mean[c]) / std[c]
//
// Each step reproduces PIL 9 and torchvision 0.14 in integer arithmetic where they use it, so the
// pixels agree exactly with theirs (tests/image_test.cpp measures it against PIL). The codecs
// are in core/ (jpeg_io.h: libjpeg-turbo, png_io.h: libpng).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/image8.h"
#include "core/tensor.h"

namespace fovea::data {

// A JPEG or PNG file, told apart by its signature; anything else is an error naming the file and,
// when it recognises one, the format the file is in.
Image8 decode_image(const std::string& bytes, const std::string& name);
Image8 read_image(const std::string& path);

// PIL's Image.convert("RGB"): grey is replicated, alpha dropped (not composited over a background),
// CMYK converted by PIL's formula r = k' - k' * (255 - c') / 255 on the stored (inverted) samples,
// rounded as PIL rounds.
Image8 to_rgb(const Image8& img);

// PIL's Image.resize((width, height), Image.BILINEAR) of an 8-bit image with any number of channels:
// a triangle filter whose support is scaled by the reduction factor (so downscaling averages every
// source pixel under it: antialiased), weights normalised per output pixel and rounded to 22-bit
// fixed point, a horizontal pass then a vertical pass, each rounded to 8 bits.
Image8 resize_bilinear_pil(const Image8& img, int64_t width, int64_t height);

// torchvision's Resize(size) with one int: the (height, width) that makes the shorter side `size`
// and keeps the aspect ratio (the longer side truncated, as int() does in Python).
std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size);
Image8 resize_shorter_side(const Image8& img, int64_t size);

// torchvision's CenterCrop((height, width)): the offsets round half to even, as Python's round();
// a side shorter than the crop is padded with zeros first, (d // 2) before and the rest after.
Image8 center_crop(const Image8& img, int64_t height, int64_t width);

// torchvision's RandomResizedCrop after its box is chosen (F.resized_crop on a PIL image): the region of
// `height` x `width` at (top, left), which must lie inside the image, resized to size x size by
// resize_bilinear_pil.
Image8 resized_crop(const Image8& img, int64_t top, int64_t left, int64_t height, int64_t width, int64_t size);

// ToTensor and Normalize: float32 [C,H,W], (sample / 255 - mean[c]) / stddev[c] in float32 as
// torch computes it. mean and stddev have one value per channel.
Tensor to_normalized_tensor(const Image8& img, const std::vector<float>& mean, const std::vector<float>& stddev);

// The evaluation transform of torchvision's ImageNet classifiers.
struct EvalTransform {
  int64_t resize = 256;  // the shorter side, before the crop
  int64_t crop = 224;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> stddev = {0.229f, 0.224f, 0.225f};
};
// An RGB image through Resize, CenterCrop, ToTensor and Normalize: float32 [3, crop, crop].
Tensor eval_preprocess(const Image8& rgb, const EvalTransform& t = {});
// read_image + to_rgb + eval_preprocess; errors in the file name it.
Tensor load_eval_image(const std::string& path, const EvalTransform& t = {});

}  // namespace fovea::data
