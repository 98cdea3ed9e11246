// Datasets for training and evaluation: the file formats of MNIST / Fashion-MNIST (IDX, raw or
// gzip) and CIFAR-10 / CIFAR-100 (binary batches), two built-in synthetic datasets (coloured shapes
// for small CNNs, 2-D rings for small MLPs), subsets and validation splits, per-channel
// normalisation and seeded augmentation. Every random choice is Philox from (seed, epoch, sample
// index), so a run gives the same batches on every machine, whatever the timing.
// The background batch loader is in layers/data/loader.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/augment.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea::data {

struct Dataset {
  // uint8 [N,C,H,W] (pixels 0..255), float32 [N,C,H,W], or float32 [N,D] (feature vectors); CPU.
  Tensor images;
  Tensor labels;                         // int64 [N], each in [0, num_classes())
  std::vector<std::string> class_names;  // one per class
  std::string name;                      // e.g. "cifar10/train"

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t num_classes() const { return int64_t(class_names.size()); }
  bool is_image() const { return images.ndim() == 4; }
  int64_t channels() const { return images.size(1); }  // [N,C,H,W] only
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  // Shapes, dtypes, device and every label's range; throws naming the dataset.
  void validate() const;
};

enum class Split { train, test };
const char* split_name(Split s);

// ------------------------------------------------------------------ file formats (bytes + a name
// for messages, so tests and fuzzers need no files). Errors name the file and the byte offset.

// The size of a whole file as its first bytes declare it: 0 while `head` is too short to tell, SIZE_MAX when
// it declares nothing (gunzip's `declared_size`).
using DeclaredSize = std::function<size_t(std::string_view head)>;
// An IDX file's size from its header (the header plus the product of its sizes); SIZE_MAX when `head` is not
// an IDX header.
size_t idx_declared_size(std::string_view head);
// A gzip stream (several members are concatenated) into bytes; more than `max_bytes` is an error, and so is
// more than `declared_size` says the data's own header declares: checked while inflating, so a gzip bomb is
// stopped after the header's size, not after gigabytes.
std::string gunzip(const std::string& bytes, const std::string& name, size_t max_bytes = size_t(1) << 32,
                   const DeclaredSize& declared_size = nullptr);
// A whole file, decompressed when it starts with the gzip magic bytes.
std::string read_file_maybe_gzip(const std::string& path, const DeclaredSize& declared_size = nullptr);

// An IDX file (big-endian header: 0, 0, type, ndim, then ndim uint32 sizes) of unsigned bytes
// (type 0x08), 1 to 4 dimensions, as a uint8 tensor of those sizes. The data must fill the file exactly.
Tensor parse_idx(const std::string& bytes, const std::string& name);
// Images [N,H,W] + labels [N] IDX files into a dataset with images [N,1,H,W]; labels must be in
// [0, class_names.size()).
Dataset parse_idx_dataset(const std::string& image_bytes, const std::string& image_name, const std::string& label_bytes,
                          const std::string& label_name, const std::vector<std::string>& class_names);

enum class CifarKind { cifar10, cifar100 };
// One CIFAR binary batch: records of <label byte> (CIFAR-10) or <coarse byte><fine byte>
// (CIFAR-100, the fine label is used) followed by 3072 bytes: the R, G and B planes, 32x32 each.
Dataset parse_cifar(const std::string& bytes, const std::string& name, CifarKind kind);
// Examples [begin, end) of a dataset of uint8 [N, 3, 32, 32] images and 10 classes as CIFAR-10 records
// (what parse_cifar reads back): other tools can read what fovea trains on (the synthetic shapes).
std::string encode_cifar10(const Dataset& ds, int64_t begin, int64_t end);

// ------------------------------------------------------------------ loaders from a directory

// MNIST or Fashion-MNIST: {train,t10k}-{images-idx3,labels-idx1}-ubyte, also with '.' before "idx"
// and with a .gz suffix. (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist.)
Dataset load_mnist(const std::string& dir, Split split);
Dataset load_fashion_mnist(const std::string& dir, Split split);
// CIFAR-10: data_batch_1..5.bin (train) or test_batch.bin in `dir` or `dir`/cifar-10-batches-bin;
// class names from batches.meta.txt when present. CIFAR-100: train.bin / test.bin in `dir` or
// `dir`/cifar-100-binary, fine labels, names from fine_label_names.txt when present.
Dataset load_cifar10(const std::string& dir, Split split);
Dataset load_cifar100(const std::string& dir, Split split);

// ------------------------------------------------------------------ synthetic datasets

// "shapes": 32x32 RGB uint8 images of one of 10 procedurally drawn shapes (kShapeNames) at a random
// position, size, small rotation and colour, on a noisy gradient background with small distractor
// dots. Image i of a split is a pure function of (seed, split, i); label = i % 10 (balanced).
extern const char* const kShapeNames[10];
Dataset make_shapes(int64_t n, Split split, uint64_t seed = 0);
// "rings": float32 [N,2] points, class 0 uniform in the disk of radius r_inner, class 1 uniform in
// the annulus [r_ring_lo, r_ring_hi], plus N(0, noise^2) on each coordinate; label = i % 2.
struct RingsOptions {
  float r_inner = 1.0f, r_ring_lo = 1.5f, r_ring_hi = 2.0f, noise = 0.1f;
};
Dataset make_rings(int64_t n, Split split, uint64_t seed = 0, const RingsOptions& options = {});

// By name, for the command line: "mnist", "fashion-mnist", "cifar10", "cifar100" read `dir`;
// "shapes" (10000 train / 2000 test) and "rings" (2000 / 1000) are generated with seed 0.
Dataset load_dataset(const std::string& name, const std::string& dir, Split split);

// ------------------------------------------------------------------ subsets and splits

// Samples by index, in the given order (a copy).
Dataset select(const Dataset& ds, const std::vector<int64_t>& indices);
// The first n samples (a view, no copy). n > size() is an error.
Dataset subset(const Dataset& ds, int64_t n);
// n distinct samples drawn by a seeded permutation, kept in their original relative order (a copy).
Dataset random_subset(const Dataset& ds, int64_t n, uint64_t seed);
// Holds out n_val random samples (seeded) as validation; both parts keep their original order.
struct TrainVal {
  Dataset train, val;
};
TrainVal split_validation(const Dataset& ds, int64_t n_val, uint64_t seed);

// A permutation of 0..n-1 (Fisher-Yates on Philox words of (seed, epoch)): the shuffle of an epoch.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t epoch);

// ------------------------------------------------------------------ normalisation, augmentation

// Per-channel mean and standard deviation in pixel units of [0,1] (uint8 / 255).
struct Normalization {
  std::vector<float> mean, stddev;
  bool empty() const { return mean.empty(); }
};
// Over every image and pixel of `ds` (use the training set), accumulated in double.
Normalization channel_stats(const Dataset& ds);

// Random geometric augmentation, all composed into one affine warp with bilinear sampling; pixels
// from outside the image are 0 (before normalisation, i.e. black, as padding a raw image does).
struct Augment {
  int pad_crop = 0;         // random crop of the image padded by this many pixels (CIFAR: 4)
  bool hflip = false;       // horizontal flip with probability 1/2
  float translate = 0.0f;   // extra shift, uniform in +-translate * size (fraction)
  float rotate_deg = 0.0f;  // rotation uniform in +-rotate_deg
  float zoom = 0.0f;        // scale uniform in [1 - zoom, 1 + zoom]
  float shear_deg = 0.0f;   // horizontal shear angle uniform in +-shear_deg
  bool any() const { return pad_crop > 0 || hflip || translate > 0 || rotate_deg > 0 || zoom > 0 || shear_deg > 0; }
};

// The augmentation language of --augment: "none", "standard" (= crop:4,flip), or a comma list of crop:PAD
// (0-64), flip, translate:FRACTION (0-0.5), rotate:DEGREES (0-180), zoom:FRACTION (0-0.9), shear:DEGREES
// (0-60). Errors are UsageErrors naming `what` and the item.
Augment parse_augment(std::string_view text, std::string_view what = "augment");
// The canonical text of `a` in that language ("none" when it does nothing); parse_augment reads it back.
std::string augment_spec(const Augment& a);

// The warp of sample `index` in `epoch`: a function of (seed, epoch, index) only. Pure flips and
// integer shifts give integer source coordinates, so they copy pixels exactly.
Affine augment_affine(const Augment& aug, int64_t height, int64_t width, uint64_t seed, uint64_t epoch, int64_t index);

// Augments a float [B,C,H,W] host batch into `out` (same shape, may not alias `in`); sample b uses
// the warp of (seed, epoch, sample_ids[b]) so its result does not depend on its batch position.
void augment_batch(const Tensor& in, Tensor& out, const Augment& aug, uint64_t seed, uint64_t epoch,
                   const std::vector<int64_t>& sample_ids);

// The loader's fused step: gathers samples `indices` of `ds`, converts uint8 to [0,1], warps
// (when aug.any()), normalises (when `norm` is not empty) into float `images` [B, ...] and copies the
// labels into int64 `labels` [B]. Both outputs are host tensors of the right size.
void prepare_batch(const Dataset& ds, const int64_t* indices, int64_t count, const Augment& aug,
                   const Normalization& norm, uint64_t seed, uint64_t epoch, float* images, int64_t* labels);

// Augmentation on the training device (the loader's LoaderOptions::device_augment): gathers samples
// `indices` of image dataset `ds` as stored (uint8 or float) into `raw` [count, C, H, W] of the dataset's
// dtype, each sample's warp into `warps` (identity when !aug.any()) and the labels; ops::augment_forward
// then gives what prepare_batch gives.
void gather_batch(const Dataset& ds, const int64_t* indices, int64_t count, const Augment& aug, uint64_t seed,
                  uint64_t epoch, void* raw, Affine* warps, int64_t* labels);

}  // namespace fovea::data
