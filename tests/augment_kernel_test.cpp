// kernels/augment: warping and normalising an image batch on the device gives what the host loader gives
// (layers/data/data.h prepare_batch, the training path on device cpu): bitwise on the emulator, rel L2 <= 1e-5
// on a GPU (nvcc contracts multiply-adds). Every augmentation, uint8 and float pixels, with and without
// normalisation, shapes from N=1 C=1 to odd sizes and 1x1 images; the op (ops::augment_forward) on cpu and
// on the device; the loader's device_augment mode; argument errors.
#include "layers/ops/augment.h"

#include <gtest/gtest.h>

#include <numeric>

#include "cpu_reference/augment.h"
#include "layers/data/data.h"
#include "layers/data/loader.h"
#include "layers/ops/ops.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

struct ImageShape {
  int64_t N, C, H, W;
};
const ImageShape kShapes[] = {{1, 1, 28, 28}, {5, 3, 32, 32}, {3, 2, 7, 13}, {4, 3, 1, 1}, {2, 4, 17, 9}};

struct NamedAugment {
  const char* name;
  data::Augment aug;
};
std::vector<NamedAugment> augments() {
  std::vector<NamedAugment> v;
  data::Augment a;
  v.push_back({"none", a});
  a.pad_crop = 4, a.hflip = true;
  v.push_back({"crop4_flip", a});
  a = {}, a.translate = 0.15f;
  v.push_back({"translate", a});
  a = {}, a.rotate_deg = 20;
  v.push_back({"rotate", a});
  a = {}, a.zoom = 0.25f;
  v.push_back({"zoom", a});
  a = {}, a.shear_deg = 12;
  v.push_back({"shear", a});
  a.pad_crop = 2, a.hflip = true, a.translate = 0.05f, a.rotate_deg = 10, a.zoom = 0.1f;
  v.push_back({"all", a});
  return v;
}

// A dataset of N + 3 random images (uint8 0..255 or float in [-1, 1]).
data::Dataset random_dataset(const ImageShape& s, DType dtype, uint64_t seed) {
  data::Dataset ds;
  const int64_t n = s.N + 3, elems = n * s.C * s.H * s.W;
  const std::vector<float> v = random_vector(size_t(elems), seed);
  if (dtype == DType::uint8) {
    std::vector<uint8_t> px(v.size());
    for (size_t i = 0; i < v.size(); ++i) px[i] = uint8_t(std::lround((v[i] + 1.0f) * 127.5f));
    ds.images = Tensor::from_vector(px, {n, s.C, s.H, s.W});
  } else {
    ds.images = Tensor::from_vector(v, {n, s.C, s.H, s.W});
  }
  ds.labels = Tensor::from_vector(random_labels(size_t(n), 3, seed + 1), {n});
  ds.class_names = {"a", "b", "c"};
  ds.name = "random";
  return ds;
}

data::Normalization random_norm(int64_t C, uint64_t seed) {
  data::Normalization norm;
  const auto m = random_vector(size_t(C), seed, 0.2f, 0.6f), sd = random_vector(size_t(C), seed + 1, 0.1f, 0.4f);
  norm.mean.assign(m.begin(), m.end());
  norm.stddev.assign(sd.begin(), sd.end());
  return norm;
}

// Samples N+2, 0, N, 1, ... of the dataset: out of order, skipping some.
std::vector<int64_t> batch_indices(int64_t N) {
  std::vector<int64_t> idx(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) idx[size_t(i)] = (i * 7 + N + 2) % (N + 3);
  return idx;
}

struct Prepared {
  std::vector<float> want;  // prepare_batch: the host loader's images
  Tensor raw, warps;        // gather_batch: raw pixels and warps for the device
  AugmentParams params;
};
Prepared prepare(const data::Dataset& ds, const std::vector<int64_t>& idx, const data::Augment& aug,
                 const data::Normalization& norm, uint64_t seed, uint64_t epoch) {
  const int64_t N = int64_t(idx.size());
  Prepared p;
  p.want.resize(size_t(N * ds.channels() * ds.height() * ds.width()));
  std::vector<int64_t> labels(static_cast<size_t>(N)), labels2(static_cast<size_t>(N));
  data::prepare_batch(ds, idx.data(), N, aug, norm, seed, epoch, p.want.data(), labels.data());
  p.raw = Tensor::empty({N, ds.channels(), ds.height(), ds.width()}, ds.images.dtype(), kCPU);
  p.warps = Tensor::empty({N, 6}, DType::float32, kCPU);
  data::gather_batch(ds, idx.data(), N, aug, seed, epoch, p.raw.raw_data(),
                     reinterpret_cast<Affine*>(p.warps.data<float>()), labels2.data());
  EXPECT_EQ(labels, labels2);
  p.params = ops::augment_params(p.raw.shape(), p.raw.dtype(), aug.any(), norm.mean, norm.stddev);
  return p;
}

class AugmentKernels : public ::testing::TestWithParam<Device> {};

TEST_P(AugmentKernels, MatchesTheHostLoader) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  uint64_t seed = 100;
  for (const ImageShape& s : kShapes)
    for (DType dtype : {DType::uint8, DType::float32})
      for (const NamedAugment& a : augments())
        for (bool normalize : {false, true}) {
          ++seed;
          const std::string tag = cat("augment.", s.N, "x", s.C, "x", s.H, "x", s.W, ".", dtype_name(dtype), ".",
                                      a.name, normalize ? ".norm" : "");
          const data::Dataset ds = random_dataset(s, dtype, seed);
          const data::Normalization norm = normalize ? random_norm(s.C, seed) : data::Normalization{};
          const Prepared p = prepare(ds, batch_indices(s.N), a.aug, norm, seed, 3);
          const Tensor x = p.raw.to(dev), w = p.warps.to(dev);
          DeviceArray<float> y(p.want.size(), dev);
          const auto* warps = reinterpret_cast<const Affine*>(w.data<float>());
          const auto run = [&] {
            y.poison();
            if (dtype == DType::uint8)
              ops::augment_forward_u8_stub(kernel_exec(dev), p.params, x.data<uint8_t>(), warps, y.data());
            else
              ops::augment_forward_f32_stub(kernel_exec(dev), p.params, x.data<float>(), warps, y.data());
            return y.download();
          };
          const std::vector<float> got = expect_deterministic(dev, tag, run, s.N * s.H * s.W < 2000);
          EXPECT_TRUE(all_written(got, tag.c_str()));
          if (dev.type == DeviceType::emu)
            EXPECT_TRUE(bitwise_equal(got, p.want, tag + " vs host loader"));
          else
            EXPECT_TRUE(matches_reference(got, p.want, tag));
        }
}

TEST_P(AugmentKernels, OpOnCpuAndDeviceMatchesTheHostLoader) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const ImageShape s{6, 3, 32, 32};
  data::Augment aug;
  aug.pad_crop = 4, aug.hflip = true, aug.rotate_deg = 5;
  const data::Dataset ds = random_dataset(s, DType::uint8, 7);
  const data::Normalization norm = random_norm(3, 8);
  const Prepared p = prepare(ds, batch_indices(s.N), aug, norm, 9, 0);
  ops::Context cpu(kCPU), on_dev(dev);
  const Tensor y_cpu = ops::augment_forward(cpu, p.raw, p.warps, norm.mean, norm.stddev);
  const Tensor y_dev = ops::augment_forward(on_dev, p.raw.to(dev), p.warps.to(dev), norm.mean, norm.stddev);
  EXPECT_TRUE(bitwise_equal(y_cpu.to_vector<float>(), p.want, "ops cpu"));
  const std::vector<float> got = y_dev.to(kCPU).to_vector<float>();
  if (dev.type == DeviceType::emu)
    EXPECT_TRUE(bitwise_equal(got, p.want, "ops device"));
  else
    EXPECT_TRUE(matches_reference(got, p.want, "ops device"));
  // Without warps and statistics the op is the uint8 -> [0, 1] conversion.
  const Tensor plain = ops::augment_forward(on_dev, p.raw.to(dev), Tensor(), {}, {});
  const std::vector<float> px = plain.to(kCPU).to_vector<float>();
  const uint8_t* raw = p.raw.data<uint8_t>();
  for (size_t i = 0; i < px.size(); ++i) ASSERT_EQ(px[i], float(raw[i]) * (1.0f / 255.0f)) << i;
}

// The trainer's path on emu/cuda (device_augment + ops::augment_forward) hands the model the same images as
// the host loader on cpu, batch by batch, for a shuffled, augmented epoch with a last partial batch.
TEST_P(AugmentKernels, LoaderDeviceAugmentGivesTheHostBatches) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const data::Dataset ds = random_dataset({40, 3, 12, 10}, DType::uint8, 21);
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.augment.pad_crop = 2, lo.augment.hflip = true, lo.augment.zoom = 0.1f;
  lo.normalization = random_norm(3, 22);
  lo.seed = 5;
  data::LoaderOptions lo_dev = lo;
  lo_dev.device_augment = true;
  data::BatchLoader host(ds, lo), device(ds, lo_dev);
  ops::Context ctx(dev);
  for (int64_t epoch : {0, 1}) {
    host.start_epoch(epoch), device.start_epoch(epoch);
    data::Batch a, b;
    int64_t batches = 0;
    while (host.next(a)) {
      ASSERT_TRUE(device.next(b));
      ASSERT_EQ(b.images.dtype(), DType::uint8);
      const Tensor y =
          ops::augment_forward(ctx, b.images.to(dev), b.warps.to(dev), lo.normalization.mean, lo.normalization.stddev);
      const std::string tag = cat("epoch ", epoch, " batch ", batches);
      EXPECT_EQ(a.labels.to_vector<int64_t>(), b.labels.to_vector<int64_t>()) << tag;
      const std::vector<float> got = y.to(kCPU).to_vector<float>(), want = a.images.to_vector<float>();
      if (dev.type == DeviceType::emu)
        EXPECT_TRUE(bitwise_equal(got, want, tag));
      else
        EXPECT_TRUE(matches_reference(got, want, tag));
      ++batches;
    }
    EXPECT_FALSE(device.next(b));
    EXPECT_EQ(batches, 3);
  }
}

TEST_P(AugmentKernels, ArgumentErrors) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> x(2 * 9 * 4 * 4, dev), y(2 * 9 * 4 * 4, dev);
  AugmentParams p;
  p.N = 2, p.C = 9, p.H = 4, p.W = 4;
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, x.data(), nullptr, y.data()); },
                           {"augment_forward", "'C'", "9"}));
  p.C = 3, p.warp = true;
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, x.data(), nullptr, y.data()); },
                           {"augment_forward", "'warps'"}));
  p.warp = false, p.normalize = true, p.stddev[0] = p.stddev[2] = 1.0f, p.stddev[1] = 0.0f;
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, x.data(), nullptr, y.data()); },
                           {"augment_forward", "channel 1", "stddev"}));
  p.normalize = false;
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, x.data(), nullptr, x.data()); },
                           {"augment_forward", "alias"}));
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, nullptr, nullptr, y.data()); },
                           {"augment_forward", "argument 'x' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::augment_forward_f32_stub(kernel_exec(dev), p, x.data(), nullptr, nullptr); },
                           {"augment_forward", "argument 'y' is null"}));
  ops::Context ctx(dev);
  const Tensor img = Tensor::zeros({2, 3, 4, 4}, DType::uint8, dev);
  EXPECT_TRUE(throws_error(
      [&] {
        ops::augment_forward(ctx, img, Tensor::zeros({3, 6}, DType::float32, dev), {}, {});
      },
      {"augment", "'warps'", "[2, 6]"}));
  EXPECT_TRUE(throws_error([&] { ops::augment_forward(ctx, img, Tensor(), {0.5f}, {0.2f}); },
                           {"augment", "1 means", "3 channels"}));
  EXPECT_TRUE(
      throws_error([&] { ops::augment_forward(ctx, img.to(kCPU), Tensor(), {}, {}); }, {"augment", "'x'", "cpu"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, AugmentKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
