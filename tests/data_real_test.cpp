// The real datasets (ctest label `slow`): MNIST and CIFAR-10 from $FOVEA_DATA_DIR (default
// <source>/../shared/data), Fashion-MNIST from Debian's /usr/share/datasets/fashion-mnist. Each test
// skips, saying why, when its folder is absent. The CIFAR-10 copy is xz-compressed: it is
// decompressed with the `xz` command into a temporary folder first.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "layers/data/data.h"

namespace fovea::data {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() {
  const char* env = std::getenv("FOVEA_DATA_DIR");
  return env && *env ? fs::path(env) : fs::path(FOVEA_SOURCE_DIR) / ".." / "shared" / "data";
}

std::vector<int64_t> first_labels(const Dataset& ds, int n) {
  const auto l = ds.labels.to_vector<int64_t>();
  return {l.begin(), l.begin() + n};
}

TEST(RealData, Mnist) {
  const fs::path dir = data_dir() / "mnist";
  if (!fs::exists(dir)) GTEST_SKIP() << "no MNIST folder at " << dir << " (set FOVEA_DATA_DIR)";
  const Dataset train = load_mnist(dir.string(), Split::train), test = load_mnist(dir.string(), Split::test);
  EXPECT_EQ(train.images.shape(), Shape({60000, 1, 28, 28}));
  EXPECT_EQ(test.images.shape(), Shape({10000, 1, 28, 28}));
  EXPECT_EQ(first_labels(train, 10), std::vector<int64_t>({5, 0, 4, 1, 9, 2, 1, 3, 1, 4}));
  EXPECT_EQ(first_labels(test, 10), std::vector<int64_t>({7, 2, 1, 0, 4, 1, 4, 9, 5, 9}));
  train.validate();
  const Normalization n = channel_stats(train);
  EXPECT_NEAR(n.mean[0], 0.1307, 1e-3);  // the well-known MNIST statistics
  EXPECT_NEAR(n.stddev[0], 0.3081, 1e-3);
}

TEST(RealData, FashionMnistFromDebian) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) GTEST_SKIP() << "no " << dir << " (apt-get install dataset-fashion-mnist)";
  const Dataset train = load_fashion_mnist(dir.string(), Split::train);
  const Dataset test = load_fashion_mnist(dir.string(), Split::test);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(first_labels(train, 10), std::vector<int64_t>({9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(first_labels(test, 10), std::vector<int64_t>({9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
}

TEST(RealData, Cifar10) {
  const fs::path src = data_dir() / "cifar-10-lossy";
  if (!fs::exists(src)) GTEST_SKIP() << "no CIFAR-10 folder at " << src << " (set FOVEA_DATA_DIR)";
  if (std::system("xz --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "the xz command is not installed";
  const fs::path tmp = fs::temp_directory_path() / ("fovea_cifar_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  for (const char* f : {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"}) {
    const std::string cmd = "xz -dc '" + (src / (std::string(f) + ".bin.xz")).string() + "' > '" +
                            (tmp / (std::string(f) + ".bin")).string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  fs::copy_file(src / "batches.meta.txt", tmp / "batches.meta.txt");
  const Dataset train = load_cifar10(tmp.string(), Split::train), test = load_cifar10(tmp.string(), Split::test);
  fs::remove_all(tmp);
  EXPECT_EQ(train.images.shape(), Shape({50000, 3, 32, 32}));
  EXPECT_EQ(test.images.shape(), Shape({10000, 3, 32, 32}));
  EXPECT_EQ(first_labels(train, 10), std::vector<int64_t>({6, 9, 9, 4, 1, 1, 2, 7, 8, 3}));
  EXPECT_EQ(first_labels(test, 10), std::vector<int64_t>({3, 8, 8, 0, 6, 6, 1, 6, 3, 1}));
  EXPECT_EQ(train.class_names[0], "airplane");
  EXPECT_EQ(train.class_names[9], "truck");
  // Batch 5 starts at record 40000.
  EXPECT_EQ(train.labels.to_vector<int64_t>()[40000], 1);
  std::vector<int> hist(10);
  for (int64_t l : test.labels.to_vector<int64_t>()) hist[size_t(l)]++;
  for (int h : hist) EXPECT_EQ(h, 1000);
}

}  // namespace
}  // namespace fovea::data
