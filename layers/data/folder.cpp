// Folder datasets in torchvision's ImageFolder convention: listing (sorted classes, sorted files), the
// stratified one-folder split, the per-sample decode with torchvision's training and evaluation transforms,
// and the writer of such folders from a built-in dataset.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/io.h"
#include "core/philox.h"
#include "core/png_io.h"
#include "layers/data/data.h"
#include "layers/data/image.h"

namespace fovea::data {
namespace {

namespace fs = std::filesystem;

// Philox offsets (see transform.cpp): the low 4 bits say what the words are for, the epoch is above them.
constexpr uint64_t kCropStream = 4;
constexpr uint64_t kFolderSplitOffset = ~uint64_t(0xF) | 5;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);  // follows symbolic links, as os.path.isdir / DirEntry.is_dir do
}

// os.walk(dir, followlinks=True), sorted by folder, each folder's files sorted: torchvision's make_dataset order.
void walk(const fs::path& dir, std::vector<std::pair<std::string, std::vector<std::string>>>& out, int depth) {
  FOVEA_CHECK(depth < 64, "folder dataset: '", dir.string(), "' is nested more than 64 folders deep (a link loop?)");
  std::vector<std::string> files, dirs;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (is_dir(p))
      dirs.push_back(p.filename().string());
    else
      files.push_back(p.filename().string());
  }
  FOVEA_CHECK(!ec, "folder dataset: cannot list '", dir.string(), "': ", ec.message());
  std::sort(files.begin(), files.end());
  out.emplace_back(dir.string(), std::move(files));
  for (const std::string& d : dirs) walk(dir / d, out, depth + 1);
}

// The image files of one class folder in torchvision's order.
std::vector<std::string> class_files(const fs::path& class_dir) {
  std::vector<std::pair<std::string, std::vector<std::string>>> folders;
  walk(class_dir, folders, 0);
  std::sort(folders.begin(), folders.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (const auto& [root, files] : folders)
    for (const std::string& f : files)
      if (is_image_file_name(f)) out.push_back((fs::path(root) / f).string());
  return out;
}

struct Listing {
  std::vector<std::string> classes, files;
  std::vector<int64_t> labels;
};

Listing list_folder(const std::string& root) {
  Listing l;
  l.classes = image_folder_classes(root);
  for (size_t c = 0; c < l.classes.size(); ++c) {
    const fs::path d = fs::path(root) / l.classes[c];
    const std::vector<std::string> f = class_files(d);
    FOVEA_CHECK(!f.empty(), "folder dataset: class folder '", d.string(),
                "' has no images (files ending .jpg, .jpeg or .png, any case); remove it or add images");
    l.files.insert(l.files.end(), f.begin(), f.end());
    l.labels.insert(l.labels.end(), f.size(), int64_t(c));
  }
  return l;
}

Dataset make_dataset(const Listing& l, const std::vector<int64_t>& keep, const std::string& name, Split split,
                     const FolderOptions& o) {
  auto files = std::make_shared<std::vector<std::string>>();
  Dataset ds;
  ds.labels = Tensor::empty({int64_t(keep.size())}, DType::int64, kCPU);
  for (size_t i = 0; i < keep.size(); ++i) {
    files->push_back(l.files[size_t(keep[i])]);
    ds.labels.data<int64_t>()[i] = l.labels[size_t(keep[i])];
  }
  ds.files = std::move(files);
  ds.class_names = l.classes;
  ds.name = name;
  ds.file_transform.size = o.image_size;
  ds.file_transform.random_crop = split == Split::train && o.transform == "torchvision";
  ds.file_transform.plain_resize = o.transform == "resize";
  ds.file_transform.skip_bad = o.skip_bad_images;
  return ds;
}

// Fisher-Yates on Philox words of (seed, class): the held-out images of one class.
std::vector<int64_t> class_permutation(int64_t n, uint64_t seed, int64_t cls) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  const uint64_t offset = kFolderSplitOffset ^ (uint64_t(cls) << 8);
  for (int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    const uint64_t w =
        (uint64_t(philox_u32(seed, offset, 2 * uint64_t(k))) << 32) | philox_u32(seed, offset, 2 * uint64_t(k) + 1);
    std::swap(p[size_t(i)], p[size_t((unsigned __int128)w * uint64_t(i + 1) >> 64)]);
  }
  return p;
}

}  // namespace

Shape Dataset::sample_shape() const {
  if (from_files()) return Shape({3, file_transform.size, file_transform.size});
  std::vector<int64_t> dims = images.shape().vec();
  dims.erase(dims.begin());
  return Shape(dims);
}

bool is_image_file_name(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> image_folder_classes(const std::string& root) {
  std::error_code ec;
  FOVEA_CHECK(fs::exists(root, ec), "folder dataset: '", root, "' does not exist");
  FOVEA_CHECK(is_dir(root), "folder dataset: '", root, "' is not a folder");
  std::vector<std::string> classes;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (is_dir(it->path())) classes.push_back(it->path().filename().string());
  FOVEA_CHECK(!ec, "folder dataset: cannot list '", root, "': ", ec.message());
  std::sort(classes.begin(), classes.end());
  FOVEA_CHECK(!classes.empty(), "folder dataset: '", root,
              "' has no class folders (expected one sub-folder of images per class: ", root, "/<class>/*.png)");
  return classes;
}

Dataset load_image_folder(const std::string& dir, Split split, const FolderOptions& o) {
  FOVEA_CHECK(o.image_size >= 1 && o.image_size <= 4096, "--image-size: must be in [1, 4096], got ", o.image_size);
  FOVEA_CHECK(o.transform == "torchvision" || o.transform == "resize", "--image-transform: '", o.transform,
              "' is not a transform (expected torchvision or resize)");
  std::error_code ec;
  FOVEA_CHECK(fs::exists(dir, ec), "--data: folder dataset '", dir, "' does not exist");
  FOVEA_CHECK(is_dir(dir), "--data: folder dataset '", dir, "' is not a folder");
  const fs::path train_dir = fs::path(dir) / "train", val_dir = fs::path(dir) / "val";
  const bool has_train = is_dir(train_dir), has_val = is_dir(val_dir);
  if (has_train || has_val) {
    FOVEA_CHECK(has_train && has_val, "folder dataset '", dir, "': has ", has_train ? "train/" : "val/", " but no ",
                has_train ? "val/" : "train/", " (the layout is DIR/train/<class>/* and DIR/val/<class>/*)");
    const std::vector<std::string> a = image_folder_classes(train_dir.string()),
                                   b = image_folder_classes(val_dir.string());
    if (a != b) {
      std::string only_a, only_b;
      for (const std::string& c : a)
        if (!std::binary_search(b.begin(), b.end(), c)) only_a += (only_a.empty() ? "" : ", ") + c;
      for (const std::string& c : b)
        if (!std::binary_search(a.begin(), a.end(), c)) only_b += (only_b.empty() ? "" : ", ") + c;
      FOVEA_FAIL("folder dataset '", dir, "': train/ and val/ have different class folders (only in ",
                 train_dir.string(), ": ", only_a.empty() ? "none" : only_a, "; only in ", val_dir.string(), ": ",
                 only_b.empty() ? "none" : only_b, ")");
    }
    const fs::path root = split == Split::train ? train_dir : val_dir;
    const Listing l = list_folder(root.string());
    std::vector<int64_t> all(l.files.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
    return make_dataset(l, all, root.string(), split, o);
  }
  FOVEA_CHECK(o.val_split > 0 && o.val_split < 1, "folder dataset '", dir,
              "' has no train/ and val/ folders: give --val-split F (0 < F < 1) to hold out that fraction of each "
              "class for evaluation, or use the layout DIR/train/<class>/*, DIR/val/<class>/*");
  const Listing l = list_folder(dir);
  // Stratified: each class holds out round(F * n) of its n images (at least 1, and at least 1 stays).
  std::vector<int64_t> keep;
  for (int64_t c = 0, begin = 0; c < int64_t(l.classes.size()); ++c) {
    int64_t end = begin;
    while (end < int64_t(l.labels.size()) && l.labels[size_t(end)] == c) ++end;
    const int64_t n = end - begin;
    FOVEA_CHECK(n >= 2, "folder dataset '", dir, "': class folder '", (fs::path(dir) / l.classes[size_t(c)]).string(),
                "' has ", n, " image; --val-split needs at least 2 per class");
    const int64_t held = std::clamp<int64_t>(std::llround(o.val_split * double(n)), 1, n - 1);
    std::vector<int64_t> p = class_permutation(n, o.seed, c);
    std::vector<int64_t> part(split == Split::test ? p.begin() : p.begin() + held,
                              split == Split::test ? p.begin() + held : p.end());
    std::sort(part.begin(), part.end());
    for (int64_t i : part) keep.push_back(begin + i);
    begin = end;
  }
  return make_dataset(l, keep, cat(dir, split == Split::train ? "[train part]" : "[held-out part]"), split, o);
}

bool image_folder_has_splits(const std::string& dir) {
  return is_dir(fs::path(dir) / "train") || is_dir(fs::path(dir) / "val");
}

CropBox random_resized_crop_box(int64_t height, int64_t width, uint64_t seed, uint64_t epoch, int64_t index) {
  const uint64_t off = (epoch << 4) | kCropStream;
  const auto U = [&](int k) { return double(philox_uniform(seed, off, uint64_t(index) * 32 + uint64_t(k))); };
  const double area = double(height) * double(width);
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (0.08 + (1.0 - 0.08) * U(4 * attempt));
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * U(4 * attempt + 1));
    // Python's round(): half to even, as nearbyint in the default rounding mode.
    const int64_t w = int64_t(std::nearbyint(std::sqrt(target * ratio)));
    const int64_t h = int64_t(std::nearbyint(std::sqrt(target / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      // torch.randint(0, n + 1): uniform in [0, n].
      const int64_t top = std::min(int64_t(U(4 * attempt + 2) * double(height - h + 1)), height - h);
      const int64_t left = std::min(int64_t(U(4 * attempt + 3) * double(width - w + 1)), width - w);
      return {top, left, h, w};
    }
  }
  // The central crop, its aspect ratio clamped into [3/4, 4/3].
  const double in_ratio = double(width) / double(height);
  int64_t w = width, h = height;
  if (in_ratio < 3.0 / 4.0)
    h = int64_t(std::nearbyint(double(w) / (3.0 / 4.0)));
  else if (in_ratio > 4.0 / 3.0)
    w = int64_t(std::nearbyint(double(h) * (4.0 / 3.0)));
  h = std::min(h, height);
  w = std::min(w, width);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

bool random_flip(uint64_t seed, uint64_t epoch, int64_t index) {
  return philox_uniform(seed, (epoch << 4) | kCropStream, uint64_t(index) * 32 + 31) < 0.5f;
}

int64_t eval_resize_size(int64_t image_size) {
  return std::llround(double(image_size) * 256.0 / 224.0);  // never a tie: 8s/7 is never k + 1/2
}

bool decode_file_sample(const Dataset& ds, int64_t index, uint64_t seed, uint64_t epoch, uint8_t* out) {
  FOVEA_CHECK(ds.from_files() && index >= 0 && index < int64_t(ds.files->size()), "decode_file_sample: sample ", index,
              " of dataset '", ds.name, "' is not an image file");
  const std::string& path = (*ds.files)[size_t(index)];
  const FileTransform& t = ds.file_transform;
  Image8 img;
  try {
    img = to_rgb(decode_image(read_file(path), path));
  } catch (const Error& e) {
    if (t.skip_bad) return false;
    const std::string what = e.what();
    FOVEA_FAIL(what.find(path) == std::string::npos ? cat("image file '", path, "': ", what) : what,
               " (--skip-bad-images skips such files and counts them)");
  }
  if (t.random_crop) {
    const CropBox b = random_resized_crop_box(img.height, img.width, seed, epoch, index);
    img = resized_crop(img, b.top, b.left, b.height, b.width, t.size);
  } else {
    img = center_crop(resize_shorter_side(img, t.plain_resize ? t.size : eval_resize_size(t.size)), t.size, t.size);
  }
  const bool flip = t.random_crop && random_flip(seed, epoch, index);
  const int64_t S = t.size;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x)
        out[(c * S + y) * S + x] = img.samples[size_t((y * S + (flip ? S - 1 - x : x)) * 3 + c)];
  return true;
}

Dataset decode_all(const Dataset& ds, uint64_t seed, uint64_t epoch) {
  FOVEA_CHECK(ds.from_files(), "decode_all: dataset '", ds.name, "' is not a folder dataset");
  Dataset strict = ds;
  strict.file_transform.skip_bad = false;
  const int64_t N = ds.size(), S = ds.file_transform.size;
  Dataset out;
  out.images = Tensor::empty({N, 3, S, S}, DType::uint8, kCPU);
  out.labels = ds.labels;
  out.class_names = ds.class_names;
  out.name = ds.name;
  for (int64_t i = 0; i < N; ++i)
    decode_file_sample(strict, i, seed, epoch, out.images.data<uint8_t>() + i * 3 * S * S);
  return out;
}

int64_t write_image_folder(const Dataset& ds, const std::vector<int64_t>& indices, const std::string& dir,
                           bool overwrite) {
  FOVEA_CHECK(ds.images.defined() && ds.images.ndim() == 4 && ds.images.dtype() == DType::uint8 &&
                  (ds.channels() == 1 || ds.channels() == 3),
              "write_image_folder: dataset '", ds.name, "' must hold uint8 images [N, 1 or 3, H, W], got ",
              ds.images.defined() ? ds.images.str() : "no images");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    FOVEA_CHECK(is_dir(dir), "--out: '", dir, "' exists and is not a folder");
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    FOVEA_CHECK(!ec, "--out: cannot list '", dir, "': ", ec.message());
    FOVEA_CHECK(entries.empty() || overwrite, "--out: '", dir,
                "' is not empty; give --overwrite to replace the folder dataset in it, or choose another folder");
    // Only what this writer makes is removed: class folders of .png files.
    for (const fs::path& e : entries) {
      FOVEA_CHECK(is_dir(e) && !fs::is_symlink(e), "--out: '", dir, "' holds '", e.filename().string(),
                  "', which is not a class folder: --overwrite replaces folder datasets only");
      for (fs::directory_iterator it(e, ec), end; !ec && it != end; it.increment(ec))
        FOVEA_CHECK(it->is_regular_file() && lower(it->path().extension().string()) == ".png", "--out: '",
                    it->path().string(), "' is not a PNG file: --overwrite replaces folder datasets only");
    }
    for (const fs::path& e : entries) fs::remove_all(e);
  }
  const int64_t C = ds.channels(), H = ds.height(), W = ds.width();
  int64_t written = 0;
  for (int64_t idx : indices) {
    FOVEA_CHECK(idx >= 0 && idx < ds.size(), "write_image_folder: index ", idx, " is out of range for dataset '",
                ds.name, "' of ", ds.size(), " samples");
    std::string cls = ds.class_names[size_t(ds.labels.data<int64_t>()[idx])];
    std::replace(cls.begin(), cls.end(), '/', '_');
    if (cls.empty() || cls == "." || cls == "..") cls = cat("class_", ds.labels.data<int64_t>()[idx]);
    const fs::path folder = fs::path(dir) / cls;
    fs::create_directories(folder);
    Tensor img = Tensor::empty({C, H, W}, DType::float32, kCPU);
    const uint8_t* src = ds.images.data<uint8_t>() + idx * C * H * W;
    for (int64_t i = 0; i < C * H * W; ++i) img.data<float>()[i] = float(src[i]) / 255.0f;
    write_file_atomic((folder / fmt::format("{:05d}.png", idx)).string(), encode_png(img));
    ++written;
  }
  return written;
}

}  // namespace fovea::data
