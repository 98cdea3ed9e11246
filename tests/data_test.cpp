// layers/data/data.h and layers/data/loader.h with small files written here (never the real datasets):
// IDX/gzip/CIFAR parsing and every kind of bad file, synthetic datasets, subsets, normalisation,
// augmentation, the background loader's determinism, and folder datasets (tiny PNG folders: listing,
// split, transforms, decoding with any number of threads, bad files, the folder writer).
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <set>
#include <thread>

#include "core/io.h"
#include "core/philox.h"
#include "core/png_io.h"
#include "layers/data/data.h"
#include "layers/data/image.h"
#include "layers/data/loader.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace fovea::data {
namespace {

namespace fs = std::filesystem;

using test::error_of;

#define EXPECT_ERROR_HAS(stmt, ...)                                                                      \
  do {                                                                                                   \
    const std::string _msg = error_of([&] { stmt; });                                                    \
    for (const std::string& _piece : std::vector<std::string>{__VA_ARGS__})                              \
      EXPECT_NE(_msg.find(_piece), std::string::npos) << "message: " << _msg << "\nmissing: " << _piece; \
  } while (0)

// A fresh temporary folder per test, removed at the end.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("fovea_data_test") {}
};

std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data, uint8_t type = 0x08) {
  std::string s{'\0', '\0', char(type), char(dims.size())};
  for (uint32_t d : dims) s += be32(d);
  return s + data;
}

std::string pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(philox_u32(seed, 0, i) & 0xFF);
  return s;
}

std::string gzip(const std::string& raw) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = uInt(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// MNIST-like files: n images of h x w and labels i % 10.
struct IdxPair {
  std::string images, labels;
};
IdxPair mnist_like(uint32_t n, uint32_t h, uint32_t w) {
  std::string lab(n, '\0');
  for (uint32_t i = 0; i < n; ++i) lab[i] = char(i % 10);
  return {idx_bytes({n, h, w}, pattern(size_t(n) * h * w, n)), idx_bytes({n}, lab)};
}

// ------------------------------------------------------------------ IDX and gzip

TEST(Idx, ParsesDimsAndData) {
  const std::string data = pattern(2 * 3 * 4, 7);
  const Tensor t = parse_idx(idx_bytes({2, 3, 4}, data), "x.idx");
  EXPECT_EQ(t.shape(), Shape({2, 3, 4}));
  EXPECT_EQ(t.dtype(), DType::uint8);
  EXPECT_EQ(std::memcmp(t.raw_data(), data.data(), data.size()), 0);
  EXPECT_EQ(parse_idx(idx_bytes({0}, ""), "empty.idx").numel(), 0);
}

TEST(Idx, BadFilesNameTheFileAndOffset) {
  const std::string good = idx_bytes({2, 3}, pattern(6, 1));
  EXPECT_ERROR_HAS(parse_idx("", "f.idx"), "'f.idx'", "truncated", "empty");
  EXPECT_ERROR_HAS(parse_idx(std::string("\x1f\x8b\x08\x00rest", 8), "g.idx"), "'g.idx'", "wrong magic",
                   "byte offset 0", "gzip");
  EXPECT_ERROR_HAS(parse_idx(idx_bytes({6}, pattern(24, 1), 0x0D), "fl.idx"), "'fl.idx'", "0xd", "byte offset 2");
  EXPECT_ERROR_HAS(parse_idx(idx_bytes({}, ""), "z.idx"), "'z.idx'", "0 dimensions at byte offset 3");
  EXPECT_ERROR_HAS(parse_idx(idx_bytes({1, 1, 1, 1, 1}, "x"), "five.idx"), "5 dimensions at byte offset 3");
  EXPECT_ERROR_HAS(parse_idx(good.substr(0, 10), "h.idx"), "'h.idx'", "truncated at byte offset 10",
                   "header of 2 dimensions needs 12");
  EXPECT_ERROR_HAS(parse_idx(good.substr(0, 15), "t.idx"), "'t.idx'", "truncated", "[2, 3] = 6 bytes",
                   "from byte offset 12", "ends at byte offset 15");
  EXPECT_ERROR_HAS(parse_idx(good + "xyz", "o.idx"), "'o.idx'", "oversized", "3 unexpected bytes",
                   "ends at byte offset 18");
  EXPECT_ERROR_HAS(parse_idx(idx_bytes({0x7fffffff, 0x7fffffff}, ""), "big.idx"), "'big.idx'", "more than 2^40",
                   "byte offset 12");
  EXPECT_ERROR_HAS(parse_idx(idx_bytes({0x80000000u}, ""), "huge.idx"), "absurdly large", "byte offset 4");
}

TEST(Idx, DatasetChecksShapesCountsAndLabels) {
  const std::vector<std::string> names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  IdxPair p = mnist_like(12, 5, 4);
  const Dataset ds = parse_idx_dataset(p.images, "img", p.labels, "lab", names);
  EXPECT_EQ(ds.images.shape(), Shape({12, 1, 5, 4}));
  EXPECT_EQ(ds.labels.to_vector<int64_t>()[11], 1);
  ds.validate();

  EXPECT_ERROR_HAS(parse_idx_dataset(idx_bytes({12, 20}, pattern(240, 1)), "img2d", p.labels, "lab", names), "'img2d'",
                   "3 dimensions [N,H,W] (byte offset 3), got 2");
  EXPECT_ERROR_HAS(parse_idx_dataset(p.images, "img", idx_bytes({12, 1}, pattern(12, 1)), "lab2d", names), "'lab2d'",
                   "1 dimension [N]");
  EXPECT_ERROR_HAS(parse_idx_dataset(p.images, "img", idx_bytes({11}, pattern(11, 1)), "lab11", names), "'img'",
                   "'lab11'", "12 images but 11 labels", "byte offset 4");
  std::string lab = p.labels;
  lab[8 + 7] = 10;
  EXPECT_ERROR_HAS(parse_idx_dataset(p.images, "img", lab, "labbad", names), "'labbad'", "label 10 at byte offset 15",
                   "out of range [0, 10)");
  EXPECT_ERROR_HAS(parse_idx_dataset(idx_bytes({12, 0, 4}, ""), "img0", p.labels, "lab", names), "'img0'",
                   "empty image size 0x4");
}

TEST(Gzip, RoundTripsMembersAndRejectsBadStreams) {
  const std::string raw = pattern(300000, 3) + std::string(100000, 'a');
  const std::string gz = gzip(raw);
  EXPECT_EQ(gunzip(gz, "a.gz"), raw);
  EXPECT_EQ(gunzip(gz + gzip("tail"), "two.gz"), raw + "tail");  // concatenated members
  EXPECT_ERROR_HAS(gunzip(gz.substr(0, gz.size() / 2), "half.gz"), "'half.gz'", "truncated", "byte offset");
  std::string bad = gz;
  bad[gz.size() - 6] ^= 0x40;  // the CRC-32 of the trailer
  EXPECT_ERROR_HAS(gunzip(bad, "crc.gz"), "'crc.gz'", "corrupt");
  std::string bad2 = gz;
  bad2[20] = '\xff', bad2[21] = '\xff', bad2[22] = '\xff';
  EXPECT_ERROR_HAS(gunzip(bad2, "data.gz"), "'data.gz'");
  EXPECT_ERROR_HAS(gunzip("plain", "p.gz"), "'p.gz'", "not gzip");
  EXPECT_ERROR_HAS(gunzip(gz, "bomb.gz", 1000), "'bomb.gz'", "more than 1000 bytes");
}

// Issue 13: a gzipped IDX file that inflates past the size its own header declares is stopped there, while
// inflating: 16 MB of zeros behind a header of 10 images of 28x28 (7,856 bytes) stops within one 64 KiB
// chunk, instead of inflating everything (gigabytes for a real bomb) before the size is checked.
TEST(Gzip, ABombIsStoppedAtItsIdxHeadersSize) {
  const std::string header = std::string("\0\0\x08\x03", 4) + std::string("\0\0\0\x0a\0\0\0\x1c\0\0\0\x1c", 12);
  EXPECT_EQ(idx_declared_size(header), 16u + 10 * 28 * 28);
  EXPECT_EQ(idx_declared_size(header.substr(0, 10)), 0u);  // too short to tell yet
  EXPECT_EQ(idx_declared_size("PK\x03\x04"), SIZE_MAX);    // not IDX: nothing declared
  const std::string gz = gzip(header + std::string(16 << 20, '\0'));
  EXPECT_LT(gz.size(), 100000u);
  try {
    gunzip(gz, "bomb-idx3-ubyte.gz", size_t(1) << 32, idx_declared_size);
    ADD_FAILURE() << "the bomb was inflated";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'bomb-idx3-ubyte.gz': inflates past the 7856 bytes its header declares"), std::string::npos) << m;
    const size_t at = m.find("stopped after ");
    ASSERT_NE(at, std::string::npos) << m;
    EXPECT_LE(std::stoull(m.substr(at + 14)), 7856u + 65536u) << m;
  }
  // An honest file of that header inflates whole.
  const std::string honest = header + pattern(7840, 1);
  EXPECT_EQ(gunzip(gzip(honest), "ok.gz", size_t(1) << 32, idx_declared_size), honest);
}

// ------------------------------------------------------------------ directory loaders

TEST(Mnist, LoadsRawAndGzipFilesInBothNamings) {
  TempDir dir;
  IdxPair tr = mnist_like(30, 28, 28), te = mnist_like(7, 28, 28);
  write_file_atomic(dir.file("train-images-idx3-ubyte.gz"), gzip(tr.images));
  write_file_atomic(dir.file("train-labels-idx1-ubyte"), tr.labels);
  write_file_atomic(dir.file("t10k-images.idx3-ubyte"), te.images);
  write_file_atomic(dir.file("t10k-labels.idx1-ubyte.gz"), gzip(te.labels));
  const Dataset train = load_mnist(dir.str(), Split::train), test = load_fashion_mnist(dir.str(), Split::test);
  EXPECT_EQ(train.images.shape(), Shape({30, 1, 28, 28}));
  EXPECT_EQ(test.images.shape(), Shape({7, 1, 28, 28}));
  EXPECT_EQ(std::memcmp(train.images.raw_data(), tr.images.data() + 16, 30 * 784), 0);
  EXPECT_EQ(train.name, "mnist/train");
  EXPECT_EQ(test.class_names[9], "Ankle boot");
  EXPECT_EQ(test.labels.to_vector<int64_t>()[6], 6);
}

TEST(Mnist, MissingAndBadFilesAreNamed) {
  TempDir dir;
  EXPECT_ERROR_HAS(load_mnist(dir.str(), Split::train), "mnist", "train-images-idx3-ubyte[.gz]", dir.str());
  IdxPair tr = mnist_like(3, 4, 4);
  write_file_atomic(dir.file("train-images-idx3-ubyte.xz"), "xz");
  EXPECT_ERROR_HAS(load_mnist(dir.str(), Split::train), "xz -dk");
  write_file_atomic(dir.file("train-images-idx3-ubyte"), tr.images.substr(0, 20));
  write_file_atomic(dir.file("train-labels-idx1-ubyte"), tr.labels);
  EXPECT_ERROR_HAS(load_mnist(dir.str(), Split::train), dir.file("train-images-idx3-ubyte"), "truncated");
  write_file_atomic(dir.file("train-images-idx3-ubyte"), "\x1f\x8b garbage that is not deflate");
  EXPECT_ERROR_HAS(load_mnist(dir.str(), Split::train), dir.file("train-images-idx3-ubyte"), "gzip");
}

std::string cifar_records(int n, bool hundred, uint64_t seed) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (hundred) s += char(i % 20);
    s += char(hundred ? (i * 7) % 100 : i % 10);
    s += pattern(3072, seed * 1000 + i);
  }
  return s;
}

TEST(Cifar, ParsesBothKinds) {
  const std::string c10 = cifar_records(3, false, 1);
  const Dataset a = parse_cifar(c10, "b.bin", CifarKind::cifar10);
  EXPECT_EQ(a.images.shape(), Shape({3, 3, 32, 32}));
  EXPECT_EQ(a.labels.to_vector<int64_t>(), std::vector<int64_t>({0, 1, 2}));
  EXPECT_EQ(std::memcmp(a.images.data<uint8_t>() + 3072, c10.data() + 3073 + 1, 3072), 0);
  const Dataset b = parse_cifar(cifar_records(5, true, 2), "train.bin", CifarKind::cifar100);
  EXPECT_EQ(b.labels.to_vector<int64_t>(), std::vector<int64_t>({0, 7, 14, 21, 28}));  // the fine labels
  EXPECT_EQ(b.num_classes(), 100);
  EXPECT_EQ(b.class_names[99], "worm");
}

// encode_cifar10 (fovea dataset) writes what parse_cifar reads back: the same pixels and labels, range by range.
TEST(Cifar, EncodeRoundTripsTheSyntheticShapes) {
  const Dataset shapes = make_shapes(30, Split::test, 3);
  const std::string all = encode_cifar10(shapes, 0, 30);
  ASSERT_EQ(all.size(), size_t(30 * 3073));
  const Dataset back = parse_cifar(all, "all.bin", CifarKind::cifar10);
  EXPECT_EQ(back.labels.to_vector<int64_t>(), shapes.labels.to_vector<int64_t>());
  EXPECT_EQ(std::memcmp(back.images.raw_data(), shapes.images.raw_data(), shapes.images.nbytes()), 0);
  const Dataset part = parse_cifar(encode_cifar10(shapes, 10, 13), "part.bin", CifarKind::cifar10);
  EXPECT_EQ(part.size(), 3);
  EXPECT_EQ(std::memcmp(part.images.raw_data(), shapes.images.data<uint8_t>() + 10 * 3072, 3 * 3072), 0);
  EXPECT_EQ(encode_cifar10(shapes, 7, 7), "");
  EXPECT_ERROR_HAS(encode_cifar10(shapes, 5, 31), "encode_cifar10", "[5, 31)", "30 examples");
  EXPECT_ERROR_HAS(encode_cifar10(shapes, 5, 4), "encode_cifar10", "[5, 4)");
  const Dataset c100 = parse_cifar(cifar_records(2, true, 1), "c100.bin", CifarKind::cifar100);
  EXPECT_ERROR_HAS(encode_cifar10(c100, 0, 2), "encode_cifar10", "100 classes", "10 classes");
}

TEST(Cifar, BadFilesNameTheFileAndOffset) {
  const std::string c10 = cifar_records(3, false, 1);
  EXPECT_ERROR_HAS(parse_cifar("", "e.bin", CifarKind::cifar10), "'e.bin'", "empty");
  EXPECT_ERROR_HAS(parse_cifar(c10.substr(0, 3073 * 2 + 100), "t.bin", CifarKind::cifar10), "CIFAR-10 file 't.bin'",
                   "3073-byte records", "byte offset 6146", "incomplete");
  EXPECT_ERROR_HAS(parse_cifar(c10 + "x", "o.bin", CifarKind::cifar10), "'o.bin'", "record at byte offset 9219");
  std::string bad = c10;
  bad[3073 * 2] = 10;
  EXPECT_ERROR_HAS(parse_cifar(bad, "l.bin", CifarKind::cifar10), "'l.bin'", "label 10 at byte offset 6146", "[0, 10)");
  std::string c100 = cifar_records(2, true, 3);
  c100[3074 + 1] = char(100);
  EXPECT_ERROR_HAS(parse_cifar(c100, "f.bin", CifarKind::cifar100), "CIFAR-100 file 'f.bin'",
                   "label 100 at byte offset 3075");
  c100[3074] = char(20);
  EXPECT_ERROR_HAS(parse_cifar(c100, "c.bin", CifarKind::cifar100), "coarse label 20 at byte offset 3074");
  // A CIFAR-10 file read as CIFAR-100 is usually not a whole number of records.
  EXPECT_ERROR_HAS(parse_cifar(c10, "k.bin", CifarKind::cifar100), "3074-byte records");
}

TEST(Cifar, LoadsDirectoriesWithMetaNames) {
  TempDir dir;
  fs::create_directories(dir.file("cifar-10-batches-bin"));
  for (int i = 1; i <= 5; ++i)
    write_file_atomic(dir.file("cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin"),
                      cifar_records(2 + i, false, i));
  write_file_atomic(dir.file("cifar-10-batches-bin/test_batch.bin"), cifar_records(4, false, 9));
  std::string meta;
  for (int i = 0; i < 10; ++i) meta += "class" + std::to_string(i) + "\n";
  write_file_atomic(dir.file("cifar-10-batches-bin/batches.meta.txt"), meta);
  const Dataset tr = load_cifar10(dir.str(), Split::train);
  EXPECT_EQ(tr.size(), 3 + 4 + 5 + 6 + 7);
  EXPECT_EQ(tr.class_names[3], "class3");
  EXPECT_EQ(tr.name, "cifar10/train");
  // The first record of batch 2 follows the 3 records of batch 1.
  const std::string b2 = cifar_records(4, false, 2);
  EXPECT_EQ(std::memcmp(tr.images.data<uint8_t>() + 3 * 3072, b2.data() + 1, 3072), 0);
  EXPECT_EQ(load_cifar10(dir.str() + "/cifar-10-batches-bin", Split::test).size(), 4);
  fs::remove(dir.file("cifar-10-batches-bin/data_batch_4.bin"));
  EXPECT_ERROR_HAS(load_cifar10(dir.str(), Split::train), "data_batch_4.bin");
  write_file_atomic(dir.file("cifar-10-batches-bin/batches.meta.txt"), "a\nb\n");
  EXPECT_ERROR_HAS(load_cifar10(dir.str(), Split::test), "batches.meta.txt", "has 2 names, expected 10");

  TempDir d100;
  write_file_atomic(d100.file("test.bin"), cifar_records(3, true, 4));
  EXPECT_EQ(load_cifar100(d100.str(), Split::test).size(), 3);
  EXPECT_ERROR_HAS(load_cifar100(d100.str(), Split::train), "cifar100", "train.bin");
}

TEST(Dataset, ValidateCatchesInconsistencies) {
  Dataset ds = make_rings(10, Split::train, 1);
  ds.validate();
  ds.labels.data<int64_t>()[3] = 2;
  EXPECT_ERROR_HAS(ds.validate(), "rings/train", "label 2 of sample 3");
  ds.labels = Tensor::zeros({9}, DType::int64);
  EXPECT_ERROR_HAS(ds.validate(), "labels must be int64 [10]");
  EXPECT_ERROR_HAS(load_dataset("imagenet", "", Split::train), "unknown dataset 'imagenet'");
}

// ------------------------------------------------------------------ synthetic

uint64_t fnv1a(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  return h;
}

TEST(Shapes, DeterministicBalancedAndVaried) {
  const Dataset a = make_shapes(200, Split::train, 5), b = make_shapes(200, Split::train, 5);
  EXPECT_EQ(fnv1a(a.images.raw_data(), a.images.nbytes()), fnv1a(b.images.raw_data(), b.images.nbytes()));
  EXPECT_EQ(a.images.shape(), Shape({200, 3, 32, 32}));
  EXPECT_EQ(a.num_classes(), 10);
  a.validate();
  // Image i depends only on (seed, split, i): a longer dataset starts with the same images.
  const Dataset longer = make_shapes(300, Split::train, 5);
  EXPECT_EQ(std::memcmp(longer.images.raw_data(), a.images.raw_data(), a.images.nbytes()), 0);
  const Dataset other_seed = make_shapes(200, Split::train, 6), test = make_shapes(200, Split::test, 5);
  EXPECT_NE(std::memcmp(other_seed.images.raw_data(), a.images.raw_data(), 3072), 0);
  EXPECT_NE(std::memcmp(test.images.raw_data(), a.images.raw_data(), 3072), 0);
  std::vector<int> count(10);
  for (int64_t l : a.labels.to_vector<int64_t>()) count[size_t(l)]++;
  for (int c : count) EXPECT_EQ(c, 20);
  // Every image has contrast (a shape on a background), and no two images are equal.
  std::set<uint64_t> hashes;
  for (int64_t i = 0; i < 200; ++i) {
    const uint8_t* p = a.images.data<uint8_t>() + i * 3072;
    EXPECT_GT(*std::max_element(p, p + 3072) - *std::min_element(p, p + 3072), 60) << i;
    hashes.insert(fnv1a(p, 3072));
  }
  EXPECT_EQ(hashes.size(), 200u);
}

TEST(Shapes, PinnedChecksumAcrossMachines) {
  // The generator is integer Philox plus float arithmetic; this value pins it so that a change to the
  // images (which would change every published "shapes" accuracy) is noticed. If you change the
  // generator on purpose, update the value and say so in the README.
  const Dataset a = make_shapes(20, Split::train, 0);
  EXPECT_EQ(fnv1a(a.images.raw_data(), a.images.nbytes()), 10233781345852202832ull);
}

TEST(Rings, PointsAreWhereTheirClassSays) {
  const RingsOptions o;
  const Dataset ds = make_rings(4000, Split::train, 3);
  EXPECT_EQ(ds.images.shape(), Shape({4000, 2}));
  const float* p = ds.images.data<float>();
  double mean_r[2] = {0, 0};
  for (int64_t i = 0; i < 4000; ++i) {
    const double r = std::hypot(p[2 * i], p[2 * i + 1]);
    const int64_t c = ds.labels.data<int64_t>()[i];
    EXPECT_EQ(c, i % 2);
    if (c == 0)
      EXPECT_LT(r, o.r_inner + 5 * o.noise);
    else
      EXPECT_TRUE(r > o.r_ring_lo - 5 * o.noise && r < o.r_ring_hi + 5 * o.noise) << r;
    mean_r[c] += r / 2000;
  }
  // Uniform in area: E[r] = 2/3 R for the disk, 2/3 (b^3 - a^3) / (b^2 - a^2) for the annulus.
  EXPECT_NEAR(mean_r[0], 2.0 / 3.0 * o.r_inner, 0.03);
  const double a = o.r_ring_lo, b = o.r_ring_hi;
  EXPECT_NEAR(mean_r[1], 2.0 / 3.0 * (b * b * b - a * a * a) / (b * b - a * a), 0.03);
  const Dataset again = make_rings(4000, Split::train, 3), test = make_rings(4000, Split::test, 3);
  EXPECT_EQ(again.images.to_vector<float>(), ds.images.to_vector<float>());
  EXPECT_NE(test.images.to_vector<float>(), ds.images.to_vector<float>());
}

// ------------------------------------------------------------------ subsets, permutations, stats

TEST(Subsets, FirstRandomAndValidationSplit) {
  const Dataset ds = make_shapes(100, Split::train, 1);
  const Dataset first = subset(ds, 10);
  EXPECT_EQ(first.size(), 10);
  EXPECT_EQ(first.images.raw_data(), ds.images.raw_data());  // a view
  EXPECT_ERROR_HAS(subset(ds, 101), "subset", "[0, 100]", "101");

  const Dataset r = random_subset(ds, 30, 9), r2 = random_subset(ds, 30, 9), r3 = random_subset(ds, 30, 10);
  EXPECT_EQ(r.images.to_vector<uint8_t>(), r2.images.to_vector<uint8_t>());
  EXPECT_NE(r.images.to_vector<uint8_t>(), r3.images.to_vector<uint8_t>());
  // Each chosen sample is a distinct sample of ds, in increasing original order.
  int64_t last = -1;
  for (int64_t i = 0; i < 30; ++i) {
    int64_t found = -1;
    for (int64_t j = 0; j < 100 && found < 0; ++j)
      if (std::memcmp(r.images.data<uint8_t>() + i * 3072, ds.images.data<uint8_t>() + j * 3072, 3072) == 0) found = j;
    ASSERT_GE(found, 0);
    EXPECT_GT(found, last);
    EXPECT_EQ(r.labels.data<int64_t>()[i], ds.labels.data<int64_t>()[found]);
    last = found;
  }

  const TrainVal tv = split_validation(ds, 25, 4);
  EXPECT_EQ(tv.train.size(), 75);
  EXPECT_EQ(tv.val.size(), 25);
  std::multiset<uint64_t> all, parts;
  for (int64_t i = 0; i < 100; ++i) all.insert(fnv1a(ds.images.data<uint8_t>() + i * 3072, 3072));
  for (const Dataset* d : {&tv.train, &tv.val})
    for (int64_t i = 0; i < d->size(); ++i) parts.insert(fnv1a(d->images.data<uint8_t>() + i * 3072, 3072));
  EXPECT_EQ(all, parts);  // a partition
  EXPECT_ERROR_HAS(select(ds, {0, 100}), "index 100", "position 1");
}

TEST(Permutation, IsAPermutationDeterministicAndSpread) {
  const auto p = permutation(1000, 42, 0);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(permutation(1000, 42, 0), p);
  EXPECT_NE(permutation(1000, 42, 1), p);
  EXPECT_NE(permutation(1000, 43, 0), p);
  EXPECT_TRUE(permutation(0, 1, 1).empty());
  EXPECT_EQ(permutation(1, 1, 1), std::vector<int64_t>{0});
  // Where element 0 lands over many epochs: every quarter of the positions gets a fair share.
  std::vector<int> quarter(4);
  for (uint64_t e = 0; e < 2000; ++e) {
    const auto q = permutation(40, 7, e);
    quarter[size_t(std::find(q.begin(), q.end(), 0) - q.begin()) / 10]++;
  }
  for (int c : quarter) EXPECT_NEAR(c, 500, 90);
}

TEST(Normalization, ChannelStatsMatchADirectComputation) {
  const Dataset ds = make_shapes(50, Split::train, 2);
  const Normalization n = channel_stats(ds);
  ASSERT_EQ(n.mean.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < 50; ++i)
      for (int64_t p = 0; p < 1024; ++p) {
        const double v = ds.images.data<uint8_t>()[(i * 3 + c) * 1024 + p] / 255.0;
        s += v;
      }
    const double m = s / (50 * 1024);
    for (int64_t i = 0; i < 50; ++i)
      for (int64_t p = 0; p < 1024; ++p) {
        const double v = ds.images.data<uint8_t>()[(i * 3 + c) * 1024 + p] / 255.0 - m;
        q += v * v;
      }
    EXPECT_NEAR(n.mean[c], m, 1e-6);
    EXPECT_NEAR(n.stddev[c], std::sqrt(q / (50 * 1024)), 1e-6);
  }
  const Normalization r = channel_stats(make_rings(100, Split::train, 1));
  EXPECT_EQ(r.mean.size(), 2u);  // per feature for [N, D]
}

// ------------------------------------------------------------------ augmentation

Tensor float_images(const Dataset& ds, int64_t n) {
  Tensor t = Tensor::empty({n, ds.channels(), ds.height(), ds.width()});
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = float(ds.images.data<uint8_t>()[i]) * (1.0f / 255.0f);  // as the loader converts
  return t;
}

std::vector<int64_t> iota_ids(int64_t n, int64_t start = 0) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(Augment, NoneIsTheIdentity) {
  const Tensor in = float_images(make_shapes(4, Split::train, 1), 4);
  Tensor out = Tensor::empty(in.shape());
  augment_batch(in, out, Augment{}, 1, 0, iota_ids(4));
  EXPECT_EQ(out.to_vector<float>(), in.to_vector<float>());
  Tensor alias = in;
  EXPECT_ERROR_HAS(augment_batch(in, alias, Augment{}, 1, 0, iota_ids(4)), "separate");
  EXPECT_ERROR_HAS(augment_batch(in, out, Augment{}, 1, 0, iota_ids(3)), "3 sample ids for a batch of 4");
}

TEST(Augment, FlipMirrorsExactlyAboutHalfTheTime) {
  const int64_t B = 64;
  const Tensor in = float_images(make_shapes(B, Split::train, 1), B);
  Tensor out = Tensor::empty(in.shape());
  Augment aug;
  aug.hflip = true;
  augment_batch(in, out, aug, 3, 0, iota_ids(B));
  int flipped = 0;
  const float* a = in.data<float>();
  const float* o = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    bool same = true, mirror = true;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) {
          const float v = o[((b * 3 + c) * 32 + y) * 32 + x];
          same = same && v == a[((b * 3 + c) * 32 + y) * 32 + x];
          mirror = mirror && v == a[((b * 3 + c) * 32 + y) * 32 + 31 - x];
        }
    EXPECT_TRUE(same || mirror) << b;
    flipped += mirror && !same;
  }
  EXPECT_GT(flipped, 16);
  EXPECT_LT(flipped, 48);
}

TEST(Augment, PadCropIsAnExactShiftWithZeroFill) {
  const int64_t B = 40, P = 4;
  const Tensor in = float_images(make_shapes(B, Split::train, 2), B);
  Tensor out = Tensor::empty(in.shape());
  Augment aug;
  aug.pad_crop = P;
  augment_batch(in, out, aug, 5, 3, iota_ids(B));
  std::set<std::pair<int, int>> shifts;
  for (int64_t b = 0; b < B; ++b) {
    bool matched = false;
    for (int dy = -P; dy <= P && !matched; ++dy)
      for (int dx = -P; dx <= P && !matched; ++dx) {
        bool ok = true;
        for (int64_t c = 0; c < 3 && ok; ++c)
          for (int64_t y = 0; y < 32 && ok; ++y)
            for (int64_t x = 0; x < 32 && ok; ++x) {
              const int64_t sx = x - dx, sy = y - dy;
              const float want =
                  sx >= 0 && sx < 32 && sy >= 0 && sy < 32 ? in.data<float>()[((b * 3 + c) * 32 + sy) * 32 + sx] : 0.0f;
              ok = out.data<float>()[((b * 3 + c) * 32 + y) * 32 + x] == want;
            }
        if (ok) matched = true, shifts.insert({dx, dy});
      }
    EXPECT_TRUE(matched) << "sample " << b << " is not a shifted copy";
  }
  EXPECT_GT(shifts.size(), 20u);  // of the 81 possible shifts
}

TEST(Augment, DeterministicPerSampleAndIndependentOfBatchPosition) {
  Augment aug;
  aug.pad_crop = 2;
  aug.hflip = true;
  aug.rotate_deg = 15;
  aug.zoom = 0.1f;
  aug.shear_deg = 8;
  aug.translate = 0.05f;
  const Tensor in = float_images(make_shapes(8, Split::train, 3), 8);
  Tensor o1 = Tensor::empty(in.shape()), o2 = Tensor::empty(in.shape()), o3 = Tensor::empty(in.shape());
  augment_batch(in, o1, aug, 11, 2, iota_ids(8, 100));
  augment_batch(in, o2, aug, 11, 2, iota_ids(8, 100));
  EXPECT_EQ(o1.to_vector<float>(), o2.to_vector<float>());
  augment_batch(in, o3, aug, 11, 3, iota_ids(8, 100));
  EXPECT_NE(o1.to_vector<float>(), o3.to_vector<float>());
  // Sample 103 alone in a batch of one gives what it gave at position 3.
  Tensor one = Tensor::empty({1, 3, 32, 32}), one_out = Tensor::empty({1, 3, 32, 32});
  one.copy_from(in.narrow(3, 1));
  augment_batch(one, one_out, aug, 11, 2, {103});
  EXPECT_EQ(std::memcmp(one_out.raw_data(), o1.narrow(3, 1).raw_data(), 3072 * 4), 0);
}

TEST(Augment, AffineHasTheRequestedGeometry) {
  Augment rot;
  rot.rotate_deg = 20;
  int neg = 0, pos = 0;
  for (int64_t i = 0; i < 200; ++i) {
    const Affine a = augment_affine(rot, 32, 32, 1, 0, i);
    // A rotation: orthonormal; the centre (15.5, 15.5) stays in place.
    EXPECT_NEAR(a.a00, a.a11, 1e-6);
    EXPECT_NEAR(a.a01, -a.a10, 1e-6);
    EXPECT_NEAR(a.a00 * a.a00 + a.a01 * a.a01, 1.0, 1e-6);
    EXPECT_NEAR(a.a00 * 15.5f + a.a01 * 15.5f + a.a02, 15.5f, 1e-4);
    const double deg = std::atan2(a.a01, a.a00) * 180 / M_PI;
    EXPECT_LE(std::fabs(deg), 20.0001);
    (deg < 0 ? neg : pos)++;
  }
  EXPECT_GT(neg, 60);
  EXPECT_GT(pos, 60);
  Augment zoom;
  zoom.zoom = 0.2f;
  for (int64_t i = 0; i < 50; ++i) {
    const Affine a = augment_affine(zoom, 32, 32, 1, 0, i);
    EXPECT_EQ(a.a01, 0.0f);
    EXPECT_EQ(a.a00, a.a11);
    EXPECT_TRUE(a.a00 >= 1 / 1.2f - 1e-6 && a.a00 <= 1 / 0.8f + 1e-6) << a.a00;
  }
  Augment shear;
  shear.shear_deg = 10;
  for (int64_t i = 0; i < 50; ++i) {
    const Affine a = augment_affine(shear, 32, 32, 1, 0, i);
    EXPECT_EQ(a.a00, 1.0f);
    EXPECT_EQ(a.a10, 0.0f);
    EXPECT_EQ(a.a11, 1.0f);
    EXPECT_LE(std::fabs(a.a01), std::tan(10 * M_PI / 180) + 1e-6);
  }
}

TEST(Augment, WarpSamplesBilinearly) {
  // A plane f(x, y) = 3x + 5y + 1 is reproduced exactly by bilinear sampling inside the image.
  std::vector<float> plane(8 * 6);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) plane[y * 8 + x] = 3.0f * x + 5.0f * y + 1.0f;
  EXPECT_FLOAT_EQ(sample_bilinear(plane.data(), 6, 8, 2.25f, 3.5f, 1.0f), 3 * 2.25f + 5 * 3.5f + 1);
  EXPECT_FLOAT_EQ(sample_bilinear(plane.data(), 6, 8, 0.0f, 0.0f, 2.0f), 2.0f);
  EXPECT_EQ(sample_bilinear(plane.data(), 6, 8, -1.0f, 2.0f, 1.0f), 0.0f);               // outside: 0
  EXPECT_FLOAT_EQ(sample_bilinear(plane.data(), 6, 8, -0.5f, 0.0f, 1.0f), 0.5f * 1.0f);  // half outside
  // A rotated batch equals the per-pixel formula with the sample's affine.
  Augment aug;
  aug.rotate_deg = 30;
  aug.zoom = 0.1f;
  const Tensor in = float_images(make_shapes(2, Split::train, 4), 2);
  Tensor out = Tensor::empty(in.shape());
  augment_batch(in, out, aug, 1, 1, {7, 8});
  const Affine a = augment_affine(aug, 32, 32, 1, 1, 8);
  for (int y = 0; y < 32; y += 5)
    for (int x = 0; x < 32; x += 3) {
      const float sx = a.a00 * x + a.a01 * y + a.a02, sy = a.a10 * x + a.a11 * y + a.a12;
      EXPECT_EQ(out.data<float>()[(3 + 1) * 1024 + y * 32 + x],
                sample_bilinear(in.data<float>() + 4 * 1024, 32, 32, sx, sy, 1.0f));
    }
}

TEST(PrepareBatch, GathersConvertsAndNormalises) {
  const Dataset ds = make_shapes(10, Split::train, 1);
  const Normalization n{{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.5f}};
  std::vector<float> img(2 * 3072);
  std::vector<int64_t> lab(2);
  const int64_t idx[2] = {7, 2};
  prepare_batch(ds, idx, 2, Augment{}, n, 0, 0, img.data(), lab.data());
  EXPECT_EQ(lab, std::vector<int64_t>({7, 2}));
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; p += 37) {
        const float v = float(ds.images.data<uint8_t>()[(idx[b] * 3 + c) * 1024 + p]) * (1.0f / 255.0f);
        EXPECT_EQ(img[(b * 3 + c) * 1024 + p], (v - n.mean[c]) / n.stddev[c]);
      }
  // The fused path (with its direct-copy shortcut for flips and whole-pixel crops) equals
  // augment_batch's bilinear warp of the converted images, for every kind of augmentation.
  for (int kind = 0; kind < 3; ++kind) {
    Augment aug;
    aug.pad_crop = 3;
    aug.hflip = true;
    if (kind == 1) aug.rotate_deg = 12;
    if (kind == 2) aug.translate = 0.1f, aug.zoom = 0.1f;
    const std::vector<int64_t> ids = iota_ids(10);
    std::vector<float> fused(10 * 3072);
    std::vector<int64_t> l(10);
    prepare_batch(ds, ids.data(), 10, aug, {}, 21, 4, fused.data(), l.data());
    const Tensor in = float_images(ds, 10);
    Tensor warped = Tensor::empty(in.shape());
    augment_batch(in, warped, aug, 21, 4, ids);
    EXPECT_TRUE(fused == warped.to_vector<float>()) << "augmentation kind " << kind;
  }
  const int64_t bad[1] = {10};
  EXPECT_ERROR_HAS(prepare_batch(ds, bad, 1, Augment{}, n, 0, 0, img.data(), lab.data()), "index 10");
  EXPECT_ERROR_HAS(prepare_batch(ds, idx, 1, Augment{}, Normalization{{0.f}, {1.f}}, 0, 0, img.data(), lab.data()),
                   "1 means", "3 channels");
  Augment flip;
  flip.hflip = true;
  const Dataset rings = make_rings(4, Split::train, 1);
  EXPECT_ERROR_HAS(prepare_batch(rings, idx + 1, 1, flip, {}, 0, 0, img.data(), lab.data()),
                   "augmentation needs images");
}

// ------------------------------------------------------------------ the background loader

struct Collected {
  std::vector<float> images;
  std::vector<int64_t> labels;
  std::vector<int64_t> sizes;
};

Collected run_epochs(const Dataset& ds, LoaderOptions opt, const std::vector<int64_t>& epochs, int consumer_sleep_us) {
  BatchLoader loader(ds, opt);
  Collected c;
  for (int64_t e : epochs) {
    loader.start_epoch(e);
    Batch b;
    int64_t expect = 0;
    while (loader.next(b)) {
      EXPECT_EQ(b.index, expect++);
      EXPECT_EQ(b.epoch, e);
      const auto v = b.images.to_vector<float>();
      c.images.insert(c.images.end(), v.begin(), v.end());
      const auto l = b.labels.to_vector<int64_t>();
      c.labels.insert(c.labels.end(), l.begin(), l.end());
      c.sizes.push_back(b.labels.size(0));
      if (consumer_sleep_us) std::this_thread::sleep_for(std::chrono::microseconds(consumer_sleep_us));
    }
    EXPECT_EQ(expect, loader.batches_per_epoch());
  }
  const LoaderStats s = loader.stats();
  EXPECT_EQ(s.batches, int64_t(c.sizes.size()));
  EXPECT_GE(s.wait_seconds, 0.0);
  EXPECT_GT(s.prepare_seconds, 0.0);
  return c;
}

TEST(Loader, SameBatchesWithAndWithoutPrefetchWhateverTheTiming) {
  const Dataset ds = make_shapes(150, Split::train, 8);
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.seed = 99;
  opt.augment.pad_crop = 4;
  opt.augment.hflip = true;
  opt.augment.rotate_deg = 10;
  opt.normalization = channel_stats(ds);
  opt.prefetch = 0;
  const Collected sync = run_epochs(ds, opt, {0, 1, 5}, 0);
  EXPECT_EQ(sync.sizes, std::vector<int64_t>({32, 32, 32, 32, 22, 32, 32, 32, 32, 22, 32, 32, 32, 32, 22}));
  for (int prefetch : {1, 2, 3}) {
    opt.prefetch = prefetch;
    const Collected fast = run_epochs(ds, opt, {0, 1, 5}, 0);
    const Collected slow = run_epochs(ds, opt, {0, 1, 5}, 3000);
    EXPECT_TRUE(fast.images == sync.images && fast.labels == sync.labels) << "prefetch " << prefetch;
    EXPECT_TRUE(slow.images == sync.images && slow.labels == sync.labels)
        << "prefetch " << prefetch << ", slow consumer";
  }
  // Each epoch holds every sample once, in a different order per epoch.
  std::vector<int64_t> e0(sync.labels.begin(), sync.labels.begin() + 150),
      e1(sync.labels.begin() + 150, sync.labels.begin() + 300);
  std::vector<int> hist(10);
  for (int64_t l : e0) hist[size_t(l)]++;
  for (int h : hist) EXPECT_EQ(h, 15);
  EXPECT_NE(e0, e1);
}

TEST(Loader, UnshuffledUnaugmentedIsTheDatasetInOrder) {
  const Dataset ds = make_shapes(20, Split::test, 1);
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.shuffle = false;
  opt.drop_last = true;
  const Collected c = run_epochs(ds, opt, {3}, 0);
  ASSERT_EQ(c.sizes, std::vector<int64_t>({8, 8}));
  for (int64_t i = 0; i < 16 * 3072; ++i)
    ASSERT_EQ(c.images[size_t(i)], float(ds.images.data<uint8_t>()[i]) * (1.0f / 255.0f));
  EXPECT_EQ(c.labels, std::vector<int64_t>(ds.labels.data<int64_t>(), ds.labels.data<int64_t>() + 16));
}

TEST(Loader, AbandonedEpochsAndEarlyDestructionAreClean) {
  const Dataset ds = make_shapes(100, Split::train, 2);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.augment.hflip = true;
  opt.prefetch = 3;
  const Collected ref = run_epochs(ds, opt, {4}, 0);
  {
    BatchLoader loader(ds, opt);
    Batch b;
    EXPECT_ERROR_HAS(loader.next(b), "start_epoch");
    loader.start_epoch(1);
    ASSERT_TRUE(loader.next(b));
    ASSERT_TRUE(loader.next(b));
    loader.start_epoch(4);  // abandons epoch 1 half-way
    std::vector<float> got;
    while (loader.next(b)) {
      const auto v = b.images.to_vector<float>();
      got.insert(got.end(), v.begin(), v.end());
    }
    EXPECT_TRUE(got == ref.images);
    EXPECT_FALSE(loader.next(b));
    loader.start_epoch(5);
    ASSERT_TRUE(loader.next(b));
  }  // destroyed mid-epoch with a full queue
  { BatchLoader never_started(ds, opt); }
  LoaderOptions zero_batch;
  zero_batch.batch_size = 0;
  EXPECT_ERROR_HAS(BatchLoader(ds, zero_batch), "batch_size");
  LoaderOptions wrong_norm;
  wrong_norm.normalization = Normalization{{0.5f}, {0.5f}};
  EXPECT_ERROR_HAS(BatchLoader(ds, wrong_norm), "1 channels", "has 3");
}

TEST(Loader, FeatureVectorsWork) {
  const Dataset rings = make_rings(50, Split::train, 1);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.normalization = channel_stats(rings);
  BatchLoader loader(rings, opt);
  loader.start_epoch(0);
  Batch b;
  int64_t n = 0;
  while (loader.next(b)) {
    EXPECT_EQ(b.images.ndim(), 2);
    EXPECT_EQ(b.images.size(1), 2);
    n += b.images.size(0);
  }
  EXPECT_EQ(n, 50);
}

// ------------------------------------------------------------------ folder datasets

// uint8 [C, H, W] pixels from Philox words, as a PNG (fovea's writer).
std::string png_of(const std::vector<uint8_t>& chw, int64_t C, int64_t H, int64_t W) {
  Tensor t = Tensor::empty({C, H, W}, DType::float32, kCPU);
  for (int64_t i = 0; i < C * H * W; ++i) t.data<float>()[i] = float(chw[size_t(i)]) / 255.0f;
  return encode_png(t);
}

std::vector<uint8_t> random_pixels(int64_t n, uint64_t seed) {
  std::vector<uint8_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = uint8_t(philox_u32(seed, 7, uint64_t(i)) & 0xFF);
  return p;
}

// A random RGB PNG of w x h at `path` (folders made as needed).
void put_png(const fs::path& path, int64_t w, int64_t h, uint64_t seed) {
  fs::create_directories(path.parent_path());
  write_file_atomic(path.string(), png_of(random_pixels(3 * w * h, seed), 3, h, w));
}

void put_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  write_file_atomic(path.string(), text);
}

std::vector<std::string> relative_files(const Dataset& ds, const fs::path& root) {
  std::vector<std::string> out;
  for (const std::string& f : *ds.files) out.push_back(fs::relative(f, root).string());
  return out;
}

TEST(FolderDataset, ClassesAreSortedAndFilesListedInTorchvisionOrder) {
  TempDir d;
  const fs::path root = d.str();
  // Upper case sorts before lower case (byte order, as Python's sorted); extensions in any case; files in
  // sub-folders count; other files are ignored.
  for (const char* f : {"train/b/1.png", "train/b/0.PNG", "train/b/sub/2.png", "train/a/x.jpeg", "train/C/z.Jpg",
                        "val/C/v.png", "val/a/v.png", "val/b/v.png"})
    put_png(root / f, 3, 2, 1);
  put_text(root / "train/b/notes.txt", "not an image");
  put_text(root / "train/b/image.gif", "GIF89a");
  EXPECT_EQ(image_folder_classes((root / "train").string()), (std::vector<std::string>{"C", "a", "b"}));
  FolderOptions o;
  o.image_size = 5;
  const Dataset train = load_image_folder(root.string(), Split::train, o);
  train.validate();
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"C", "a", "b"}));
  EXPECT_EQ(class_names_of(train), train.class_names);
  EXPECT_EQ(relative_files(train, root), (std::vector<std::string>{"train/C/z.Jpg", "train/a/x.jpeg", "train/b/0.PNG",
                                                                   "train/b/1.png", "train/b/sub/2.png"}));
  EXPECT_EQ(train.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 2, 2}));
  EXPECT_TRUE(train.file_transform.random_crop);
  EXPECT_EQ(train.size(), 5);
  EXPECT_EQ(train.sample_shape(), Shape({3, 5, 5}));
  const Dataset val = load_image_folder(root.string(), Split::test, o);
  EXPECT_EQ(relative_files(val, root), (std::vector<std::string>{"val/C/v.png", "val/a/v.png", "val/b/v.png"}));
  EXPECT_FALSE(val.file_transform.random_crop);
  // Subsets keep the files with their labels.
  const Dataset part = select(train, {4, 0});
  EXPECT_EQ(relative_files(part, root), (std::vector<std::string>{"train/b/sub/2.png", "train/C/z.Jpg"}));
  EXPECT_EQ(part.labels.to_vector<int64_t>(), (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(subset(train, 2).size(), 2);
  EXPECT_TRUE(is_image_file_name("a/B.JPEG") && !is_image_file_name("a.png.txt") && !is_image_file_name("png"));
}

TEST(FolderDataset, BadFoldersAreErrorsNamingTheFolder) {
  TempDir d;
  const fs::path root = d.str();
  FolderOptions o;
  EXPECT_ERROR_HAS(load_image_folder((root / "nope").string(), Split::train, o), (root / "nope").string(),
                   "does not exist");
  put_text(root / "file", "x");
  EXPECT_ERROR_HAS(load_image_folder((root / "file").string(), Split::train, o), "is not a folder");
  fs::create_directories(root / "empty");
  o.val_split = 0.5;
  EXPECT_ERROR_HAS(load_image_folder((root / "empty").string(), Split::train, o), (root / "empty").string(),
                   "no class folders");
  o.val_split = 0;
  // The one-folder layout needs --val-split; a class needs two images to be split.
  put_png(root / "one/cat/0.png", 2, 2, 1);
  put_png(root / "one/dog/0.png", 2, 2, 1);
  put_png(root / "one/dog/1.png", 2, 2, 1);
  EXPECT_ERROR_HAS(load_image_folder((root / "one").string(), Split::train, o), "--val-split", "train/ and val/");
  o.val_split = 0.5;
  EXPECT_ERROR_HAS(load_image_folder((root / "one").string(), Split::train, o), (root / "one/cat").string(),
                   "at least 2 per class");
  o.val_split = 0;
  // A class folder without images.
  put_png(root / "two/train/cat/0.png", 2, 2, 1);
  put_text(root / "two/train/dog/readme.txt", "no images here");
  put_png(root / "two/val/cat/0.png", 2, 2, 1);
  put_png(root / "two/val/dog/0.png", 2, 2, 1);
  EXPECT_ERROR_HAS(load_image_folder((root / "two").string(), Split::train, o), (root / "two/train/dog").string(),
                   "has no images");
  // train/ and val/ with different classes; one of them missing.
  put_png(root / "two/train/dog/0.png", 2, 2, 1);
  put_png(root / "two/val/emu/0.png", 2, 2, 1);
  EXPECT_ERROR_HAS(load_image_folder((root / "two").string(), Split::test, o), "different class folders",
                   "only in " + (root / "two/val").string() + ": emu");
  put_png(root / "three/train/cat/0.png", 2, 2, 1);
  EXPECT_ERROR_HAS(load_image_folder((root / "three").string(), Split::train, o), "has train/ but no val/");
}

TEST(FolderDataset, OneFolderSplitIsStratifiedDeterministicAndDisjoint) {
  TempDir d;
  const fs::path root = d.str();
  // The listing reads no image: empty files are enough here.
  for (int i = 0; i < 10; ++i) put_text(root / "a" / fmt::format("{}.png", i), "");
  for (int i = 0; i < 5; ++i) put_text(root / "b" / fmt::format("{}.png", i), "");
  FolderOptions o;
  o.val_split = 0.3;
  o.seed = 3;
  const Dataset train = load_image_folder(root.string(), Split::train, o);
  const Dataset test = load_image_folder(root.string(), Split::test, o);
  const std::vector<int64_t> tl = test.labels.to_vector<int64_t>();
  EXPECT_EQ(std::count(tl.begin(), tl.end(), 0), 3);  // round(0.3 * 10)
  EXPECT_EQ(std::count(tl.begin(), tl.end(), 1), 2);  // round(0.3 * 5) = round(1.5), half away from zero
  EXPECT_EQ(train.size(), 10);
  std::set<std::string> all(train.files->begin(), train.files->end());
  for (const std::string& f : *test.files) EXPECT_TRUE(all.insert(f).second) << f << " is in both parts";
  EXPECT_EQ(all.size(), 15u);
  EXPECT_TRUE(std::is_sorted(test.files->begin(), test.files->end()));
  EXPECT_EQ(*load_image_folder(root.string(), Split::test, o).files, *test.files);  // the same seed: the same split
  o.seed = 4;
  EXPECT_NE(*load_image_folder(root.string(), Split::test, o).files, *test.files);
}

TEST(FolderDataset, RandomResizedCropFollowsTorchvisionsRule) {
  int flips = 0, fallbacks = 0;
  for (int64_t i = 0; i < 2000; ++i) {
    const CropBox b = random_resized_crop_box(200, 300, 5, 1, i);
    ASSERT_TRUE(b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1 && b.top + b.height <= 200 &&
                b.left + b.width <= 300)
        << i;
    const double area = double(b.height * b.width) / (200.0 * 300.0), ratio = double(b.width) / double(b.height);
    EXPECT_TRUE(area >= 0.075 && area <= 1.0 && ratio >= 0.74 && ratio <= 1.35) << i << ": " << area << " " << ratio;
    fallbacks += b.height == 200 && b.width == 267;
    flips += random_flip(5, 1, i);
    const CropBox again = random_resized_crop_box(200, 300, 5, 1, i);
    EXPECT_TRUE(again.top == b.top && again.left == b.left && again.height == b.height && again.width == b.width);
  }
  EXPECT_GT(flips, 900);
  EXPECT_LT(flips, 1100);
  EXPECT_LT(fallbacks, 20);
  // No random box fits a 1-pixel-high image: the central crop of ratio 4/3 clamped (1x1 here), as torchvision.
  const CropBox wide = random_resized_crop_box(1, 100, 5, 0, 0);
  EXPECT_TRUE(wide.top == 0 && wide.left == 49 && wide.height == 1 && wide.width == 1);
  const CropBox tall = random_resized_crop_box(100, 1, 5, 0, 0);
  EXPECT_TRUE(tall.top == 49 && tall.left == 0 && tall.height == 1 && tall.width == 1);
  EXPECT_EQ(eval_resize_size(224), 256);
  EXPECT_EQ(eval_resize_size(32), 37);
  EXPECT_EQ(eval_resize_size(3), 3);
}

TEST(FolderDataset, DecodesToPlanarRgbThroughTheTransforms) {
  TempDir d;
  const fs::path root = d.str();
  // 3x3 at --image-size 3: the eval resize is to 3 (round(3 * 256 / 224)) and the crop 3, so the pixels pass
  // unchanged; a grey image is replicated into R, G and B.
  const std::vector<uint8_t> rgb = random_pixels(27, 11), grey = random_pixels(9, 12);
  put_text(root / "train/a/rgb.png", png_of(rgb, 3, 3, 3));
  put_text(root / "train/b/grey.png", png_of(grey, 1, 3, 3));
  put_text(root / "val/a/0.png", png_of(rgb, 3, 3, 3));
  put_text(root / "val/b/0.png", png_of(grey, 1, 3, 3));
  FolderOptions o;
  o.image_size = 3;
  const Dataset val = decode_all(load_image_folder(root.string(), Split::test, o));
  ASSERT_EQ(val.images.shape(), Shape({2, 3, 3, 3}));
  const uint8_t* px = val.images.data<uint8_t>();
  for (int i = 0; i < 27; ++i) EXPECT_EQ(px[i], rgb[size_t(i)]) << i;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 9; ++i) EXPECT_EQ(px[27 + c * 9 + i], grey[size_t(i)]) << c << " " << i;
  // The "resize" transform: the shorter side to the size, then the centre crop; a training image of that size
  // passes unchanged (no random crop, no flip).
  o.transform = "resize";
  const Dataset plain = decode_all(load_image_folder(root.string(), Split::train, o), 5, 3);
  for (int i = 0; i < 27; ++i) EXPECT_EQ(plain.images.data<uint8_t>()[i], rgb[size_t(i)]) << i;
  o.transform = "torchvision";
  // The training transform of a one-colour image is that colour, whatever the crop and flip.
  std::vector<uint8_t> flat(3 * 20 * 30);
  for (int c = 0; c < 3; ++c) std::fill_n(flat.begin() + c * 600, 600, uint8_t(40 + 70 * c));
  put_text(root / "train/a/rgb.png", png_of(flat, 3, 20, 30));
  o.image_size = 8;
  Dataset train = load_image_folder(root.string(), Split::train, o);
  std::vector<uint8_t> out(3 * 64);
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    ASSERT_TRUE(decode_file_sample(train, 0, 9, uint64_t(epoch), out.data()));
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 64; ++i) ASSERT_EQ(out[size_t(c * 64 + i)], 40 + 70 * c) << epoch << " " << c << " " << i;
  }
}

// Every batch of `epochs` epochs: images, labels and warps, bytes.
std::vector<std::string> all_batches(const Dataset& ds, LoaderOptions lo, int epochs) {
  BatchLoader loader(ds, lo);
  std::vector<std::string> out;
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    Batch b;
    while (loader.next(b)) {
      std::string bytes(static_cast<const char*>(b.images.raw_data()), b.images.nbytes());
      bytes.append(static_cast<const char*>(b.labels.raw_data()), b.labels.nbytes());
      if (b.warps.defined()) bytes.append(static_cast<const char*>(b.warps.raw_data()), b.warps.nbytes());
      out.push_back(bytes);
    }
  }
  return out;
}

TEST(FolderDataset, LoaderBatchesAreTheSameWhateverTheThreadCount) {
  TempDir d;
  const fs::path root = d.str();
  for (int i = 0; i < 11; ++i) put_png(root / (i % 3 ? "cat" : "dog") / fmt::format("{}.png", i), 9 + i, 14 - i / 2, i);
  FolderOptions o;
  o.image_size = 6;
  o.val_split = 0.25;
  const Dataset ds = load_image_folder(root.string(), Split::train, o);
  ASSERT_EQ(ds.size(), 8);
  LoaderOptions lo;
  lo.batch_size = 3;
  lo.seed = 7;
  lo.augment = parse_augment("standard");
  lo.normalization = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  lo.decode_threads = 1;
  lo.prefetch = 0;
  const std::vector<std::string> one = all_batches(ds, lo, 2);
  ASSERT_EQ(one.size(), 6u);
  EXPECT_NE(one[0], one[3]);  // another epoch, other crops and order
  lo.decode_threads = 3;
  lo.prefetch = 2;
  EXPECT_EQ(all_batches(ds, lo, 2), one);
  lo.decode_threads = 8;
  lo.prefetch = 1;
  EXPECT_EQ(all_batches(ds, lo, 2), one);
  // Device augmentation: the raw pixels and the warps, also independent of the threads.
  lo.device_augment = true;
  lo.decode_threads = 1;
  const std::vector<std::string> raw = all_batches(ds, lo, 1);
  lo.decode_threads = 4;
  EXPECT_EQ(all_batches(ds, lo, 1), raw);
  // The batch holds what decode_file_sample makes of the shuffled samples.
  lo.device_augment = false;
  lo.augment = Augment{};
  lo.normalization = {};
  BatchLoader loader(ds, lo);
  loader.start_epoch(1);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  const std::vector<int64_t> order = permutation(ds.size(), 7, 1);
  std::vector<uint8_t> px(3 * 36);
  for (int64_t r = 0; r < 3; ++r) {
    ASSERT_TRUE(decode_file_sample(ds, order[size_t(r)], 7, 1, px.data()));
    EXPECT_EQ(b.labels.data<int64_t>()[r], ds.labels.data<int64_t>()[order[size_t(r)]]);
    for (int i = 0; i < 3 * 36; ++i)
      ASSERT_EQ(b.images.data<float>()[r * 108 + i], float(px[size_t(i)]) * (1.0f / 255.0f));
  }
}

TEST(FolderDataset, ABadImageIsAnErrorNamingItOrSkippedAndCounted) {
  TempDir d;
  const fs::path root = d.str();
  for (int i = 0; i < 6; ++i) put_png(root / (i % 2 ? "b" : "a") / fmt::format("{}.png", i), 5, 4, i);
  const std::string good = read_file((root / "a/0.png").string());
  const std::string truncated = (root / "a/1_truncated.png").string(), text = (root / "b/9_text.jpg").string();
  write_file_atomic(truncated, good.substr(0, good.size() / 2));
  write_file_atomic(text, "hello");
  FolderOptions o;
  o.image_size = 4;
  o.val_split = 0.2;
  LoaderOptions lo;
  lo.batch_size = 6;
  lo.shuffle = false;
  lo.decode_threads = 3;
  // Both bad files in the training part (any other seed may put one in the held-out part): pick such a seed.
  Dataset both;
  for (uint64_t seed = 0;; ++seed) {
    o.seed = seed;
    both = load_image_folder(root.string(), Split::train, o);
    if (std::count_if(both.files->begin(), both.files->end(),
                      [&](const std::string& f) { return f == truncated || f == text; }) == 2)
      break;
  }
  {
    BatchLoader loader(both, lo);
    loader.start_epoch(0);
    Batch b;
    // The first bad file in batch order (the truncated one is listed first), whatever thread met which first.
    EXPECT_ERROR_HAS(loader.next(b), truncated, "truncated", "--skip-bad-images");
  }
  both.file_transform.skip_bad = true;
  BatchLoader loader(both, lo);
  for (int e = 0; e < 2; ++e) {
    loader.start_epoch(e);
    Batch b;
    int64_t rows = 0;
    while (loader.next(b)) {
      for (int64_t r = 0; r < b.labels.numel(); ++r)
        EXPECT_TRUE(b.labels.data<int64_t>()[r] == 0 || b.labels.data<int64_t>()[r] == 1);
      rows += b.labels.numel();
    }
    EXPECT_EQ(rows, both.size() - 2);
  }
  EXPECT_EQ(loader.stats().skipped_images, 4);  // 2 per epoch
  // A batch of nothing but bad files is an error, also when skipping.
  Dataset bad = select(both, {int64_t(std::find(both.files->begin(), both.files->end(), text) - both.files->begin())});
  LoaderOptions one = lo;
  one.batch_size = 1;
  BatchLoader none(bad, one);
  none.start_epoch(0);
  Batch b;
  EXPECT_ERROR_HAS(none.next(b), "unreadable", text);
}

TEST(FolderDataset, WriterMakesClassFoldersOfPngsAndRefusesToClobber) {
  TempDir d;
  const Dataset shapes = make_shapes(30, Split::train, 2);
  const std::string out = d.file("folder");
  EXPECT_EQ(write_image_folder(shapes, {0, 1, 2, 10, 11}, out, false), 5);
  const int64_t P = 3 * 32 * 32;
  for (int64_t i : {0, 1, 2, 10, 11}) {
    const std::string path =
        (fs::path(out) / shapes.class_names[size_t(shapes.labels.data<int64_t>()[i])] / fmt::format("{:05d}.png", i))
            .string();
    const Image8 img = read_image(path);
    ASSERT_TRUE(img.width == 32 && img.height == 32 && img.colour == ImageColour::rgb) << path;
    const uint8_t* src = shapes.images.data<uint8_t>() + i * P;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 1024; ++p) ASSERT_EQ(img.samples[size_t(p * 3 + c)], src[c * 1024 + p]) << path;
  }
  EXPECT_ERROR_HAS(write_image_folder(shapes, {3}, out, false), out, "not empty", "--overwrite");
  EXPECT_EQ(write_image_folder(shapes, {3, 13}, out, true), 2);
  FolderOptions o;
  o.image_size = 32;
  o.val_split = 0.5;
  const Dataset back = load_image_folder(out, Split::train, o);  // one class, 2 images
  EXPECT_EQ(back.class_names, (std::vector<std::string>{shapes.class_names[3]}));
  EXPECT_EQ(back.size(), 1);
  write_file_atomic((fs::path(out) / "notes.txt").string(), "mine");
  EXPECT_ERROR_HAS(write_image_folder(shapes, {3}, out, true), "notes.txt", "not a class folder");
}

}  // namespace
}  // namespace fovea::data
