// File formats: gzip, IDX (MNIST, Fashion-MNIST), CIFAR binary batches, and the directory loaders.
#include <zlib.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/io.h"
#include "layers/data/data.h"

namespace fovea::data {
namespace {

namespace fs = std::filesystem;

uint32_t be32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) | (uint32_t(uint8_t(b[at + 2])) << 8) |
         uint32_t(uint8_t(b[at + 3]));
}

const std::vector<std::string>& cifar10_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

const std::vector<std::string>& cifar100_names() {
  static const std::vector<std::string> names = {
      "apple",      "aquarium_fish", "baby",         "bear",       "beaver",      "bed",         "bee",
      "beetle",     "bicycle",       "bottle",       "bowl",       "boy",         "bridge",      "bus",
      "butterfly",  "camel",         "can",          "castle",     "caterpillar", "cattle",      "chair",
      "chimpanzee", "clock",         "cloud",        "cockroach",  "couch",       "crab",        "crocodile",
      "cup",        "dinosaur",      "dolphin",      "elephant",   "flatfish",    "forest",      "fox",
      "girl",       "hamster",       "house",        "kangaroo",   "keyboard",    "lamp",        "lawn_mower",
      "leopard",    "lion",          "lizard",       "lobster",    "man",         "maple_tree",  "motorcycle",
      "mountain",   "mouse",         "mushroom",     "oak_tree",   "orange",      "orchid",      "otter",
      "palm_tree",  "pear",          "pickup_truck", "pine_tree",  "plain",       "plate",       "poppy",
      "porcupine",  "possum",        "rabbit",       "raccoon",    "ray",         "road",        "rocket",
      "rose",       "sea",           "seal",         "shark",      "shrew",       "skunk",       "skyscraper",
      "snail",      "snake",         "spider",       "squirrel",   "streetcar",   "sunflower",   "sweet_pepper",
      "table",      "tank",          "telephone",    "television", "tiger",       "tractor",     "train",
      "trout",      "tulip",         "turtle",       "wardrobe",   "whale",       "willow_tree", "wolf",
      "woman",      "worm"};
  return names;
}

const std::vector<std::string>& mnist_names() {
  static const std::vector<std::string> names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return names;
}

const std::vector<std::string>& fashion_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

// Class names from a text file with one name per line, when it exists and has `expect` names.
std::vector<std::string> names_from_file(const fs::path& path, const std::vector<std::string>& fallback) {
  if (!fs::exists(path)) return fallback;
  std::istringstream in(read_file(path.string()));  // a regular file (read_file refuses FIFOs and devices)
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  FOVEA_CHECK(names.size() == fallback.size(), "class names file '", path.string(), "' has ", names.size(),
              " names, expected ", fallback.size());
  return names;
}

// The first of `candidates` (with and without .gz) that exists in `dir`; else an error that lists
// what was looked for and mentions an .xz file if one is there.
std::string find_file(const std::string& what, const fs::path& dir, const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    for (const char* suffix : {"", ".gz"}) {
      const fs::path p = dir / (c + suffix);
      if (fs::is_regular_file(p)) return p.string();
    }
  std::string hint;
  for (const auto& c : candidates)
    if (fs::is_regular_file(dir / (c + ".xz")))
      hint = cat(" (found '", (dir / (c + ".xz")).string(), "': decompress it first with xz -dk)");
  FOVEA_FAIL(what, ": cannot find '", candidates.front(), "[.gz]' in '", dir.string(), "'", hint);
}

fs::path first_dir_with(const std::string& dir, const std::string& sub, const std::string& probe) {
  const fs::path a(dir), b = fs::path(dir) / sub;
  if (!fs::exists(a / probe) && !fs::exists(a / (probe + ".xz")) && fs::exists(b / probe)) return b;
  return a;
}

Dataset concat(const std::vector<Dataset>& parts, const std::string& name) {
  FOVEA_CHECK(!parts.empty(), "concat: no parts");
  int64_t n = 0;
  for (const auto& p : parts) n += p.size();
  Shape s = parts[0].images.shape();
  s[0] = n;
  Dataset out;
  out.images = Tensor::empty(s, parts[0].images.dtype(), kCPU);
  out.labels = Tensor::empty({n}, DType::int64, kCPU);
  out.class_names = parts[0].class_names;
  out.name = name;
  size_t ib = 0;
  int64_t lb = 0;
  for (const auto& p : parts) {
    std::memcpy(static_cast<char*>(out.images.raw_data()) + ib, p.images.raw_data(), p.images.nbytes());
    std::memcpy(out.labels.data<int64_t>() + lb, p.labels.data<int64_t>(), p.labels.nbytes());
    ib += p.images.nbytes();
    lb += p.size();
  }
  return out;
}

// A CIFAR file holds at most the whole dataset (60,000 images of 3,074 bytes, CIFAR-100's record): the bound
// of a gzipped one while it inflates.
size_t cifar_max_size(std::string_view) {
  return size_t(60000) * 3074;
}

Dataset load_idx_dir(const std::string& what, const std::string& dir, Split split,
                     const std::vector<std::string>& class_names) {
  const std::string pre = split == Split::train ? "train" : "t10k";
  const fs::path d(dir);
  const std::string images = find_file(what, d, {pre + "-images-idx3-ubyte", pre + "-images.idx3-ubyte"});
  const std::string labels = find_file(what, d, {pre + "-labels-idx1-ubyte", pre + "-labels.idx1-ubyte"});
  Dataset ds = parse_idx_dataset(read_file_maybe_gzip(images, idx_declared_size), images,
                                 read_file_maybe_gzip(labels, idx_declared_size), labels, class_names);
  ds.name = cat(what, "/", split_name(split));
  return ds;
}

}  // namespace

const char* split_name(Split s) {
  return s == Split::train ? "train" : "test";
}

void Dataset::validate() const {
  if (from_files()) {
    FOVEA_CHECK(!images.defined() && labels.defined() && labels.ndim() == 1 && labels.dtype() == DType::int64 &&
                    labels.device().is_host_memory() && labels.size(0) == int64_t(files->size()),
                "dataset '", name, "': a folder dataset has labels int64 [", files->size(), "] and no image tensor");
    FOVEA_CHECK(file_transform.size > 0, "dataset '", name, "': image size ", file_transform.size);
  } else {
    FOVEA_CHECK(images.defined() && labels.defined(), "dataset '", name, "': images or labels are missing");
  }
  if (!from_files()) validate_tensors();
  FOVEA_CHECK(!class_names.empty(), "dataset '", name, "': no class names");
  const int64_t* l = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.size(0); ++i)
    FOVEA_CHECK(l[i] >= 0 && l[i] < num_classes(), "dataset '", name, "': label ", l[i], " of sample ", i,
                " is out of range [0, ", num_classes(), ")");
}

void Dataset::validate_tensors() const {
  FOVEA_CHECK(images.device().is_host_memory() && labels.device().is_host_memory(), "dataset '", name,
              "': images and labels must be host tensors");
  FOVEA_CHECK((images.ndim() == 4 && (images.dtype() == DType::uint8 || images.dtype() == DType::float32)) ||
                  (images.ndim() == 2 && images.dtype() == DType::float32),
              "dataset '", name, "': images must be uint8/float32 [N,C,H,W] or float32 [N,D], got ", images.str());
  FOVEA_CHECK(labels.ndim() == 1 && labels.dtype() == DType::int64 && labels.size(0) == images.size(0), "dataset '",
              name, "': labels must be int64 [", images.size(0), "], got ", labels.str());
}

size_t idx_declared_size(std::string_view head) {
  if (head.size() < 4) return 0;
  if (head[0] != 0 || head[1] != 0 || head[3] == 0) return SIZE_MAX;
  const size_t ndim = uint8_t(head[3]), header = 4 + 4 * ndim;
  if (head.size() < header) return 0;
  size_t elem = 0;
  switch (uint8_t(head[2])) {
    case 0x08:
    case 0x09: elem = 1; break;
    case 0x0B: elem = 2; break;
    case 0x0C:
    case 0x0D: elem = 4; break;
    case 0x0E: elem = 8; break;
    default: return SIZE_MAX;
  }
  size_t total = elem;
  for (size_t i = 0; i < ndim; ++i) {
    const size_t d = size_t(uint8_t(head[4 + 4 * i])) << 24 | size_t(uint8_t(head[5 + 4 * i])) << 16 |
                     size_t(uint8_t(head[6 + 4 * i])) << 8 | size_t(uint8_t(head[7 + 4 * i]));
    if (d != 0 && total > (size_t(1) << 48) / d) return SIZE_MAX - 1;  // absurd: parse_idx names it
    total *= d;
  }
  return header + total;
}

std::string gunzip(const std::string& bytes, const std::string& name, size_t max_bytes,
                   const DeclaredSize& declared_size) {
  FOVEA_CHECK(bytes.size() >= 2 && uint8_t(bytes[0]) == 0x1f && uint8_t(bytes[1]) == 0x8b, "gzip file '", name,
              "': not gzip data (bytes 0-1 are not 1f 8b)");
  std::string out;
  z_stream zs{};
  FOVEA_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "gzip file '", name, "': inflateInit2 failed");
  size_t in_pos = 0;
  bool from_header = false;  // max_bytes is the data's own declared size
  char chunk[1 << 16];
  int rc = Z_OK;
  for (;;) {
    const size_t avail = std::min<size_t>(bytes.size() - in_pos, UINT_MAX);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + in_pos));
    zs.avail_in = uInt(avail);
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += avail - zs.avail_in;
    const size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&zs);
      if (from_header)
        FOVEA_FAIL("gzip file '", name, "': inflates past the ", max_bytes,
                   " bytes its header declares (stopped after ", out.size() + produced, " bytes)");
      FOVEA_FAIL("gzip file '", name, "': decompresses to more than ", max_bytes, " bytes");
    }
    out.append(chunk, produced);
    if (declared_size) {
      const size_t declared = declared_size(out);
      if (declared != 0 && declared < max_bytes) {  // its own header bounds the file
        max_bytes = declared;
        from_header = true;
      }
      if (out.size() > max_bytes) {
        inflateEnd(&zs);
        FOVEA_FAIL("gzip file '", name, "': inflates past the ", max_bytes,
                   " bytes its header declares (stopped after ", out.size(), " bytes)");
      }
    }
    if (rc == Z_STREAM_END) {
      // Another member may follow (concatenated gzip files are one file).
      if (in_pos + 2 <= bytes.size() && uint8_t(bytes[in_pos]) == 0x1f && uint8_t(bytes[in_pos + 1]) == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      break;
    }
    if (rc == Z_BUF_ERROR && produced == 0) {
      inflateEnd(&zs);
      FOVEA_FAIL("gzip file '", name, "': truncated: the compressed data ends at byte offset ", in_pos,
                 " before the end of the stream");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : "error";
      inflateEnd(&zs);
      FOVEA_FAIL("gzip file '", name, "': corrupt data near compressed byte offset ", in_pos, ": ", msg);
    }
  }
  inflateEnd(&zs);
  return out;
}

std::string read_file_maybe_gzip(const std::string& path, const DeclaredSize& declared_size) {
  std::string bytes = read_file(path);
  if (bytes.size() >= 2 && uint8_t(bytes[0]) == 0x1f && uint8_t(bytes[1]) == 0x8b)
    return gunzip(bytes, path, size_t(1) << 32, declared_size);
  return bytes;
}

Tensor parse_idx(const std::string& bytes, const std::string& name) {
  FOVEA_CHECK(bytes.size() >= 4, "IDX file '", name, "': truncated: ", bytes.size(),
              " bytes, the header needs at least 4 (is the file empty?)");
  FOVEA_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX file '", name,
              "': wrong magic number at byte offset 0 (bytes 0-1 must be 0; a gzip file not decompressed?)");
  const uint8_t type = uint8_t(bytes[2]);
  FOVEA_CHECK(type == 0x08, "IDX file '", name, "': data type 0x", std::hex, int(type), std::dec,
              " at byte offset 2 is not supported (fovea reads unsigned bytes, 0x08)");
  const int ndim = uint8_t(bytes[3]);
  FOVEA_CHECK(ndim >= 1 && ndim <= 4, "IDX file '", name, "': ", ndim,
              " dimensions at byte offset 3; fovea reads 1 to 4");
  const size_t header = 4 + 4 * size_t(ndim);
  FOVEA_CHECK(bytes.size() >= header, "IDX file '", name, "': truncated at byte offset ", bytes.size(),
              ": the header of ", ndim, " dimensions needs ", header, " bytes");
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint32_t d = be32(bytes, 4 + 4 * i);
    FOVEA_CHECK(d <= (1u << 31) - 1, "IDX file '", name, "': size ", d, " of dimension ", i, " at byte offset ",
                4 + 4 * i, " is absurdly large");
    dims.push_back(d);
    FOVEA_CHECK(d == 0 || numel <= (uint64_t(1) << 40) / d, "IDX file '", name,
                "': the sizes in the header (up to byte offset ", 8 + 4 * i, ") describe more than 2^40 bytes");
    numel *= d;
  }
  const uint64_t have = bytes.size() - header;
  FOVEA_CHECK(have >= numel, "IDX file '", name, "': truncated: the header describes ", Shape(dims).str(), " = ", numel,
              " bytes of data from byte offset ", header, ", but the file ends at byte offset ", bytes.size());
  FOVEA_CHECK(have == numel, "IDX file '", name, "': oversized: ", have - numel,
              " unexpected bytes after the data, which ends at byte offset ", header + numel);
  Tensor t = Tensor::empty(Shape(dims), DType::uint8, kCPU);
  if (numel) std::memcpy(t.raw_data(), bytes.data() + header, numel);
  return t;
}

Dataset parse_idx_dataset(const std::string& image_bytes, const std::string& image_name, const std::string& label_bytes,
                          const std::string& label_name, const std::vector<std::string>& class_names) {
  const Tensor images = parse_idx(image_bytes, image_name);
  const Tensor labels = parse_idx(label_bytes, label_name);
  FOVEA_CHECK(images.ndim() == 3, "IDX file '", image_name,
              "': images must have 3 dimensions [N,H,W] (byte offset 3), got ", images.ndim());
  FOVEA_CHECK(images.size(1) > 0 && images.size(2) > 0, "IDX file '", image_name, "': empty image size ",
              images.size(1), "x", images.size(2), " at byte offsets 8-15");
  FOVEA_CHECK(labels.ndim() == 1, "IDX file '", label_name, "': labels must have 1 dimension [N] (byte offset 3), got ",
              labels.ndim());
  FOVEA_CHECK(labels.size(0) == images.size(0), "IDX files '", image_name, "' and '", label_name, "': ", images.size(0),
              " images but ", labels.size(0), " labels (the counts at byte offset 4)");
  const int64_t n = labels.size(0);
  Dataset ds;
  ds.images = images.reshape({n, 1, images.size(1), images.size(2)});
  ds.labels = Tensor::empty({n}, DType::int64, kCPU);
  ds.class_names = class_names;
  ds.name = image_name;
  const uint8_t* l = labels.data<uint8_t>();
  int64_t* out = ds.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    FOVEA_CHECK(int64_t(l[i]) < int64_t(class_names.size()), "IDX file '", label_name, "': label ", int(l[i]),
                " at byte offset ", 8 + i, " is out of range [0, ", class_names.size(), ")");
    out[i] = l[i];
  }
  return ds;
}

Dataset parse_cifar(const std::string& bytes, const std::string& name, CifarKind kind) {
  const size_t label_bytes = kind == CifarKind::cifar10 ? 1 : 2, pixels = 3 * 32 * 32, record = label_bytes + pixels;
  const char* what = kind == CifarKind::cifar10 ? "CIFAR-10" : "CIFAR-100";
  FOVEA_CHECK(!bytes.empty(), what, " file '", name, "': empty");
  FOVEA_CHECK(bytes.size() % record == 0, what, " file '", name, "': ", bytes.size(),
              " bytes is not a whole number of ", record, "-byte records: the record at byte offset ",
              bytes.size() / record * record, " is incomplete (truncated or wrong format)");
  const int64_t n = int64_t(bytes.size() / record);
  const int64_t classes = kind == CifarKind::cifar10 ? 10 : 100;
  Dataset ds;
  ds.images = Tensor::empty({n, 3, 32, 32}, DType::uint8, kCPU);
  ds.labels = Tensor::empty({n}, DType::int64, kCPU);
  ds.class_names = kind == CifarKind::cifar10 ? cifar10_names() : cifar100_names();
  ds.name = name;
  uint8_t* img = ds.images.data<uint8_t>();
  int64_t* lab = ds.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const size_t at = size_t(i) * record;
    if (kind == CifarKind::cifar100)
      FOVEA_CHECK(uint8_t(bytes[at]) < 20, what, " file '", name, "': coarse label ", int(uint8_t(bytes[at])),
                  " at byte offset ", at, " is out of range [0, 20)");
    const int label = uint8_t(bytes[at + label_bytes - 1]);
    FOVEA_CHECK(label < classes, what, " file '", name, "': label ", label, " at byte offset ", at + label_bytes - 1,
                " is out of range [0, ", classes, ")");
    lab[i] = label;
    std::memcpy(img + size_t(i) * pixels, bytes.data() + at + label_bytes, pixels);
  }
  return ds;
}

std::string encode_cifar10(const Dataset& ds, int64_t begin, int64_t end) {
  ds.validate();
  FOVEA_CHECK(ds.images.dtype() == DType::uint8 && ds.is_image() && ds.channels() == 3 && ds.height() == 32 &&
                  ds.width() == 32 && ds.num_classes() == 10,
              "encode_cifar10: dataset '", ds.name, "' is ", ds.images.str(), " with ", ds.num_classes(),
              " classes; the CIFAR-10 layout holds uint8 [N, 3, 32, 32] images of 10 classes");
  FOVEA_CHECK(0 <= begin && begin <= end && end <= ds.size(), "encode_cifar10: range [", begin, ", ", end,
              ") is outside the dataset's ", ds.size(), " examples");
  constexpr size_t pixels = 3 * 32 * 32;
  std::string out(size_t(end - begin) * (1 + pixels), '\0');
  const uint8_t* img = ds.images.data<uint8_t>();
  const int64_t* lab = ds.labels.data<int64_t>();
  for (int64_t i = begin; i < end; ++i) {
    char* rec = out.data() + size_t(i - begin) * (1 + pixels);
    rec[0] = char(uint8_t(lab[i]));
    std::memcpy(rec + 1, img + size_t(i) * pixels, pixels);
  }
  return out;
}

Dataset load_mnist(const std::string& dir, Split split) {
  return load_idx_dir("mnist", dir, split, mnist_names());
}

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  return load_idx_dir("fashion-mnist", dir, split, fashion_names());
}

Dataset load_cifar10(const std::string& dir, Split split) {
  const fs::path d = first_dir_with(dir, "cifar-10-batches-bin", "test_batch.bin");
  std::vector<std::string> files;
  if (split == Split::train)
    for (int i = 1; i <= 5; ++i) files.push_back(cat("data_batch_", i, ".bin"));
  else
    files.push_back("test_batch.bin");
  std::vector<Dataset> parts;
  for (const auto& f : files) {
    const std::string path = find_file("cifar10", d, {f});
    parts.push_back(parse_cifar(read_file_maybe_gzip(path, cifar_max_size), path, CifarKind::cifar10));
  }
  Dataset ds = parts.size() == 1 ? parts[0] : concat(parts, "");
  ds.class_names = names_from_file(d / "batches.meta.txt", cifar10_names());
  ds.name = cat("cifar10/", split_name(split));
  return ds;
}

Dataset load_cifar100(const std::string& dir, Split split) {
  const fs::path d = first_dir_with(dir, "cifar-100-binary", "test.bin");
  const std::string path = find_file("cifar100", d, {split == Split::train ? "train.bin" : "test.bin"});
  Dataset ds = parse_cifar(read_file_maybe_gzip(path, cifar_max_size), path, CifarKind::cifar100);
  ds.class_names = names_from_file(d / "fine_label_names.txt", cifar100_names());
  ds.name = cat("cifar100/", split_name(split));
  return ds;
}

}  // namespace fovea::data
