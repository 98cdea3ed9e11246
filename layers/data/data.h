// Datasets for training and evaluation: the file formats of MNIST / Fashion-MNIST (IDX, raw or
// gzip) and CIFAR-10 / CIFAR-100 (binary batches), two built-in synthetic datasets (coloured shapes
// for small CNNs, 2-D rings for small MLPs), folder datasets of image files in class folders
// (torchvision's ImageFolder, decoded per batch by the loader), subsets and validation splits, per-channel
// normalisation and seeded augmentation. Every random choice is Philox from (seed, epoch, sample
// index), so a run gives the same batches on every machine, whatever the timing.
// The background batch loader is in layers/data/loader.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/augment.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea::data {

// How the image files of a folder dataset become uint8 [3, size, size] samples (decode_file_sample).
struct FileTransform {
  int64_t size = 224;         // the side of the square samples (--image-size)
  bool random_crop = false;   // training: RandomResizedCrop + horizontal flip; else resize + centre crop
  bool plain_resize = false;  // the resize makes the shorter side `size` (not round(size * 256 / 224))
  bool skip_bad = false;      // a file that does not decode is skipped and counted, not an error
};

struct Dataset {
  // uint8 [N,C,H,W] (pixels 0..255), float32 [N,C,H,W], or float32 [N,D] (feature vectors); CPU.
  // Undefined for a folder dataset, whose images stay files until a batch needs them (`files`).
  Tensor images;
  Tensor labels;                         // int64 [N], each in [0, num_classes())
  std::vector<std::string> class_names;  // one per class
  std::string name;                      // e.g. "cifar10/train"
  // A folder dataset (load_image_folder): sample i is the image file (*files)[i], decoded per batch through
  // file_transform into uint8 [3, size, size]; shared by copies and views.
  std::shared_ptr<const std::vector<std::string>> files;
  FileTransform file_transform;

  bool from_files() const { return files != nullptr; }
  int64_t size() const { return images.defined() ? images.size(0) : from_files() ? labels.size(0) : 0; }
  int64_t num_classes() const { return int64_t(class_names.size()); }
  bool is_image() const { return from_files() || images.ndim() == 4; }
  int64_t channels() const { return from_files() ? 3 : images.size(1); }  // [N,C,H,W] only
  int64_t height() const { return from_files() ? file_transform.size : images.size(2); }
  int64_t width() const { return from_files() ? file_transform.size : images.size(3); }
  // The shape of one sample: [C,H,W] or [D].
  Shape sample_shape() const;
  // Shapes, dtypes, device and every label's range; throws naming the dataset.
  void validate() const;

 private:
  void validate_tensors() const;
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

// ------------------------------------------------------------------ folder datasets (torchvision's ImageFolder)

// The image files a folder dataset reads: torchvision's IMG_EXTENSIONS that fovea decodes, compared
// case-insensitively (.jpg, .jpeg, .png). Other files are ignored, as ImageFolder ignores them.
bool is_image_file_name(const std::string& path);
// The classes of an ImageFolder root: its sub-folder names in sorted (byte) order, as torchvision sorts them;
// label = position. Errors (UsageError): `root` missing or not a folder, no class folders.
std::vector<std::string> image_folder_classes(const std::string& root);
// The class names of a dataset (of a folder dataset: its sorted class folders), for per-class reports.
inline const std::vector<std::string>& class_names_of(const Dataset& ds) {
  return ds.class_names;
}

struct FolderOptions {
  int64_t image_size = 224;  // --image-size
  // The one-folder layout (no train/ and val/ inside): the fraction in (0, 1) of each class held out as
  // the test split, chosen per class by a permutation of (seed) (a stratified split).
  double val_split = 0;
  uint64_t seed = 1;
  bool skip_bad_images = false;
  // "torchvision": training images through RandomResizedCrop + flip, test images resized to round(size * 256 /
  // 224) and centre-cropped. "resize": every image's shorter side resized to `size`, then centre-cropped (an
  // image of size x size stays as it is); training augmentation only through --augment (for small images).
  std::string transform = "torchvision";
};
// A folder dataset, torchvision's ImageFolder convention: `dir`/train/<class>/* (Split::train) and
// `dir`/val/<class>/* (Split::test); or `dir`/<class>/* with options.val_split, split per class. The files are
// listed (sorted) but not read: they are decoded per batch. Training samples get the training transform
// (RandomResizedCrop + flip), test samples the evaluation one. Errors name the folder: missing, no class
// folders, a class folder without images, train/ and val/ with different classes, the one-folder layout without
// --val-split or a class too small to split.
Dataset load_image_folder(const std::string& dir, Split split, const FolderOptions& options);
// Whether `dir` has the train/ + val/ layout (else it is one folder of class folders).
bool image_folder_has_splits(const std::string& dir);

// torchvision's RandomResizedCrop.get_params with scale (0.08, 1) and ratio (3/4, 4/3): up to 10 tries of a
// random area and log-uniform aspect ratio, then the central crop of the ratio clamped into range; the uniform
// numbers are Philox words of (seed, epoch, index). Returns {top, left, height, width} inside the image.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
CropBox random_resized_crop_box(int64_t height, int64_t width, uint64_t seed, uint64_t epoch, int64_t index);
// Whether the training transform flips sample `index` of `epoch` (probability 1/2).
bool random_flip(uint64_t seed, uint64_t epoch, int64_t index);
// The evaluation resize of --image-size s: round(s * 256 / 224) (256 for 224, 37 for 32), then a centre crop of s.
int64_t eval_resize_size(int64_t image_size);

// Sample `index` of folder dataset `ds` decoded and transformed into `out` (uint8 [3, size, size], planar).
// false when the file does not decode and ds.file_transform.skip_bad; otherwise such a file is a UsageError
// naming it. A pure function of (file, transform, seed, epoch, index): any thread may run it.
bool decode_file_sample(const Dataset& ds, int64_t index, uint64_t seed, uint64_t epoch, uint8_t* out);
// The whole folder dataset decoded into memory (tests and small data only): uint8 [N, 3, size, size].
// Bad files are errors here, also with skip_bad.
Dataset decode_all(const Dataset& ds, uint64_t seed = 0, uint64_t epoch = 0);

// Writes samples of image dataset `ds` (uint8 [N, 1 or 3, H, W]) as a folder dataset: `dir`/<class>/NNNNN.png
// (NNNNN the sample's index in `ds`, class folders named after the class, '/' replaced by '_'), each file
// through write_file_atomic. `dir` must be empty or missing, unless `overwrite`; then it may only hold such
// class folders of PNG files, which are removed first. Returns the number of files written.
int64_t write_image_folder(const Dataset& ds, const std::vector<int64_t>& indices, const std::string& dir,
                           bool overwrite);

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

// prepare_batch's arithmetic on samples already gathered: uint8 `raw` [count, C, H, W]; row b's warp is that of
// sample_ids[b] (the loader decodes folder datasets into `raw`).
void prepare_gathered(const uint8_t* raw, int64_t count, int64_t channels, int64_t height, int64_t width,
                      const int64_t* sample_ids, const Augment& aug, const Normalization& norm, uint64_t seed,
                      uint64_t epoch, float* images);

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
