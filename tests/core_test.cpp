// core/: tensors, memory, devices, npy files, Philox.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/device.h"
#include "core/dispatch.h"
#include "core/io.h"
#include "core/memory.h"
#include "core/npy.h"
#include "core/parse.h"
#include "core/philox.h"
#include "core/stream.h"
#include "core/tensor.h"
#include "tests/test_util.h"

#if FOVEA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace fovea {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("fovea_core_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

using test::error_of;

TEST(Shape, StridesAreRowMajor) {
  Shape s{2, 3, 4, 5};
  EXPECT_EQ(s.numel(), 120);
  EXPECT_EQ(s.stride(0), 60);
  EXPECT_EQ(s.stride(1), 20);
  EXPECT_EQ(s.stride(3), 1);
  EXPECT_EQ(s.str(), "[2, 3, 4, 5]");
  EXPECT_THROW(Shape({1, 2, 3, 4, 5, 6}), Error);
}

TEST(Tensor, ReshapeAndNarrowAreViews) {
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = float(i) + 0.5f;
  Tensor t = Tensor::from_vector(v, {2, 3, 4}, kEmu);
  Tensor r = t.reshape({6, -1});
  EXPECT_EQ(r.shape(), Shape({6, 4}));
  EXPECT_EQ(r.raw_data(), t.raw_data());
  Tensor n = t.narrow(1, 1);
  EXPECT_EQ(n.shape(), Shape({1, 3, 4}));
  EXPECT_EQ(n.data<float>()[0], 12.5f);
  n.data<float>()[0] = -1.0f;  // writes through to t
  EXPECT_EQ(t.data<float>()[12], -1.0f);
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.narrow(1, 2), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
}

TEST(Tensor, ToCopiesBetweenDevices) {
  Tensor a = Tensor::from_vector(std::vector<int64_t>{1, -2, 3}, {3}, kCPU);
  Tensor b = a.to(kEmu);
  EXPECT_EQ(b.device(), kEmu);
  EXPECT_NE(b.raw_data(), a.raw_data());
  EXPECT_EQ(b.to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  Tensor z = Tensor::zeros({4}, DType::float32, kEmu);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_THROW(b.copy_from(Tensor::zeros({4}, DType::int64)), Error);
}

TEST(Stream, GuardSetsAndRestoresTheCurrentStream) {
  EXPECT_EQ(current_stream(), nullptr);  // the legacy default stream until a guard names another
  int a = 0, b = 0;                      // stand-ins for two cudaStream_t handles (never dereferenced)
  {
    StreamGuard outer(static_cast<StreamHandle>(&a));
    EXPECT_EQ(current_stream(), &a);
    {
      StreamGuard inner(static_cast<StreamHandle>(&b));
      EXPECT_EQ(current_stream(), &b);
    }
    EXPECT_EQ(current_stream(), &a);
    // Another thread has its own current stream.
    StreamHandle seen = &a;
    std::thread([&] { seen = current_stream(); }).join();
    EXPECT_EQ(seen, nullptr);
  }
  EXPECT_EQ(current_stream(), nullptr);
}

// What a GPU makes the host wait for is counted on emu too; copies inside a device and fills are not.
TEST(Stream, HostSynchronisationsAreCounted) {
  const Tensor host = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  auto syncs = [](auto&& f) {
    const int64_t before = host_sync_count();
    f();
    return host_sync_count() - before;
  };
  Tensor dev;
  EXPECT_EQ(syncs([&] { dev = host.to(kEmu); }), 1);  // host -> device
  EXPECT_EQ(syncs([&] { (void)dev.to_vector<float>(); }), 1);
  EXPECT_EQ(syncs([&] { (void)dev.to(kCPU); }), 1);
  EXPECT_EQ(syncs([&] { (void)dev.to(kEmu); }), 0);  // device -> device: enqueued
  EXPECT_EQ(syncs([&] { (void)host.to(kCPU); }), 0);
  EXPECT_EQ(syncs([&] { dev.fill_zero(); }), 0);
  EXPECT_EQ(syncs([&] { (void)Tensor::zeros({4}, DType::float32, kEmu); }), 0);
  EXPECT_EQ(syncs([] { synchronize(kEmu); }), 1);
  EXPECT_EQ(syncs([] { synchronize(kCPU); }), 0);
  EXPECT_EQ(syncs([] { Stream(kEmu).synchronize(); }), 1);
  EXPECT_EQ(syncs([] { Event(kEmu).synchronize(); }), 1);
  EXPECT_EQ(syncs([] { Event(kCPU).synchronize(); }), 0);
}

// upload_bytes / Tensor::upload: the source may change as soon as the call returns, and nothing waits. On cuda
// the bytes go through page-locked staging blocks that are reused only once the device has read them; the
// stream is held up first (a host function that sleeps), so every copy is still pending while the host
// overwrites its source and the pool must grow instead of reusing a block.
class Upload : public ::testing::TestWithParam<Device> {};

#if FOVEA_HAVE_CUDA
void CUDART_CB sleep_50ms(void*) {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}
#endif

TEST_P(Upload, SourceMayChangeAtOnceAndNothingWaits) {
  const Device dev = GetParam();
  if (dev.type == DeviceType::cuda && !cuda_available()) GTEST_SKIP() << "device cuda: " << cuda_unavailable_reason();
  Stream stream(dev);
  StreamGuard on(stream);
#if FOVEA_HAVE_CUDA
  if (dev.type == DeviceType::cuda) {
    ASSERT_EQ(cudaLaunchHostFunc(static_cast<cudaStream_t>(stream.handle()), sleep_50ms, nullptr), cudaSuccess);
  }
#endif
  const int64_t rows = 200, len = 1017;  // sizes off any power of two; rows * len * 4 bytes ~ 0.8 MB
  Tensor dst = Tensor::empty({rows, len}, DType::int32, dev);
  std::vector<int32_t> src(static_cast<size_t>(len));
  const int64_t syncs = host_sync_count();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < len; ++j) src[size_t(j)] = int32_t(r * len + j);
    upload_bytes(dst.data<int32_t>() + r * len, dev, src.data(), src.size() * sizeof(int32_t));
    std::fill(src.begin(), src.end(), -1);  // at once: the upload must not read it any more
  }
  const Tensor host = Tensor::from_vector(std::vector<float>{1.5f, -2.0f, 3.25f}, {3});
  Tensor up = host.upload(dev);
  host.data<float>()[0] = 99.0f;
  EXPECT_EQ(host_sync_count() - syncs, 0) << "an upload waited for the device";
  const std::vector<int32_t> got = dst.to_vector<int32_t>();  // the one wait
  for (int64_t i = 0; i < rows * len; ++i)
    if (got[size_t(i)] != int32_t(i)) {
      ADD_FAILURE() << "element " << i << " is " << got[size_t(i)];
      break;
    }
  EXPECT_EQ(up.to_vector<float>(), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  EXPECT_NE(error_of([&] { (void)up.upload(dev); }).find("must be a cpu tensor"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Devices, Upload, ::testing::Values(kEmu, kCUDA),
                         [](const auto& info) { return info.param.type == DeviceType::emu ? "emu" : "cuda"; });

TEST(Device, Parse) {
  EXPECT_EQ(parse_device("cpu"), kCPU);
  EXPECT_EQ(parse_device("emu"), kEmu);
  EXPECT_EQ(parse_device("cuda:1"), Device(DeviceType::cuda, 1));
  EXPECT_NE(error_of([] { parse_device("tpu"); }).find("'tpu' is not a device"), std::string::npos);
}

TEST(Device, CudaUnavailableHasAReason) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; this test is about machines without one";
  EXPECT_FALSE(cuda_unavailable_reason().empty());
  EXPECT_NE(error_of([] { Buffer b(16, kCUDA); }).find("device 'cuda' requested"), std::string::npos);
}

TEST(CachingAllocator, ReusesFreedBlocksAndCountsPeak) {
  static int raw_allocs = 0, raw_frees = 0;
  CachingAllocator a(
      [](size_t n) {
        ++raw_allocs;
        return std::malloc(n);
      },
      [](void* p) {
        ++raw_frees;
        std::free(p);
      },
      /*gpu=*/false);
  void* p = a.allocate(1000);
  EXPECT_EQ(a.stats().bytes_in_use, 1024u);
  a.deallocate(p);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().bytes_cached, 1024u);
  void* q = a.allocate(900);  // same rounded size: reused
  EXPECT_EQ(q, p);
  EXPECT_EQ(raw_allocs, 1);
  void* r = a.allocate(5000);  // much bigger: a new block
  EXPECT_EQ(raw_allocs, 2);
  EXPECT_EQ(a.stats().peak_bytes_in_use, 1024u + 5120u);
  a.deallocate(q);
  a.deallocate(r);
  void* s = a.allocate(100000);  // the cached blocks are too small
  EXPECT_EQ(raw_allocs, 3);
  a.deallocate(s);
  a.release_cached();
  EXPECT_EQ(raw_frees, 3);
  EXPECT_EQ(a.stats().bytes_cached, 0u);
  EXPECT_THROW(a.deallocate(reinterpret_cast<void*>(0x1234)), Error);
}

// Running out of memory says which memory, and is a device error only for a GPU's (host memory: a runtime error
// without a source location, as fovea prints it to users).
TEST(CachingAllocator, OutOfMemorySaysWhichMemory) {
  auto fail = [](size_t) -> void* { return nullptr; };
  CachingAllocator host(fail, std::free, /*gpu=*/false), gpu(fail, std::free, /*gpu=*/true);
  try {
    host.allocate(1 << 20);
    ADD_FAILURE() << "no error";
  } catch (const DeviceError& e) {
    ADD_FAILURE() << "a device error for host memory: " << e.what();
  } catch (const Error& e) {
    EXPECT_TRUE(std::string(e.what()).find("out of host memory allocating 1048576 bytes") != std::string::npos)
        << e.what();
    EXPECT_EQ(e.file(), nullptr);
    EXPECT_FALSE(e.internal());
  }
  EXPECT_TRUE(test::throws_error([&] { gpu.allocate(1 << 20); }, {"out of GPU memory", "1048576"}));
  EXPECT_THROW(gpu.allocate(1), DeviceError);
}

TEST(Workspace, GrowsAndRespectsLimit) {
  Workspace ws(kEmu, 4096);
  void* p = ws.get(100);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(ws.get(50), p);
  EXPECT_GE(ws.capacity(), 100u);
  EXPECT_NO_THROW(ws.get(4096));
  EXPECT_THROW(ws.get(4097), Error);
}

TEST(Npy, RoundTripEveryDtype) {
  const std::string path = temp_path("rt.npy");
  Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 3e-8f, 1e30f, 0.f, 7.f}, {2, 3});
  write_npy(path, f);
  Tensor g = read_npy(path);
  EXPECT_EQ(g.shape(), f.shape());
  EXPECT_EQ(g.to_vector<float>(), f.to_vector<float>());
  write_npy(path, Tensor::from_vector(std::vector<int32_t>{-1, 2}, {2}));
  EXPECT_EQ(read_npy(path).to_vector<int32_t>(), (std::vector<int32_t>{-1, 2}));
  write_npy(path, Tensor::from_vector(std::vector<int64_t>{1LL << 40, 3}, {1, 2}));
  EXPECT_EQ(read_npy(path).to_vector<int64_t>(), (std::vector<int64_t>{1LL << 40, 3}));
  write_npy(path, Tensor::from_vector(std::vector<uint8_t>{0, 255, 7}, {3, 1, 1}));
  Tensor u = read_npy(path);
  EXPECT_EQ(u.shape(), Shape({3, 1, 1}));
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 255, 7}));
  std::remove(path.c_str());
}

TEST(Npy, MalformedFilesNameTheFileAndTheProblem) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  const std::string good = serialize_npy(t);
  EXPECT_NE(error_of([&] { parse_npy(good.substr(0, good.size() - 3), "x.npy"); }).find("x.npy': truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_npy(good.substr(0, 20), "x.npy"); }).find("truncated"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_npy("PK\x03\x04 not numpy at all", "y.npy"); }).find("y.npy': not a .npy file"),
            std::string::npos);
  std::string bad_dtype = good;
  bad_dtype.replace(bad_dtype.find("<f4"), 3, ">f8");
  EXPECT_NE(error_of([&] { parse_npy(bad_dtype, "z.npy"); }).find("dtype '>f8'"), std::string::npos);
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_NE(error_of([&] { parse_npy(fortran, "f.npy"); }).find("Fortran"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_npy(good + "xx", "g.npy"); }).find("trailing"), std::string::npos);
  EXPECT_NE(error_of([] { read_npy("/nonexistent/dir/a.npy"); }).find("/nonexistent/dir/a.npy"), std::string::npos);
}

TEST(Io, AtomicWriteReplacesWholeFile) {
  const std::string path = temp_path("atomic.txt");
  write_file_atomic(path, "first version, long");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  std::remove(path.c_str());
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/file", "x"), Error);
}

TEST(Philox, MatchesRandom123KnownAnswers) {
  // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
  Philox4 a = philox4x32(Philox4{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(a.v[0], 0x6627e8d5u);
  EXPECT_EQ(a.v[1], 0xe169c58du);
  EXPECT_EQ(a.v[2], 0xbc57ac4cu);
  EXPECT_EQ(a.v[3], 0x9b00dbd8u);
  Philox4 b = philox4x32(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(b.v[0], 0x408f276du);
  EXPECT_EQ(b.v[3], 0x6d5451fdu);
}

TEST(Philox, UniformAndNormalAreSane) {
  double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = philox_uniform(7, 3, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sum2 += u * u;
    const float z = philox_normal(7, 3, i);
    ASSERT_TRUE(std::isfinite(z));
    nsum += z;
    nsum2 += double(z) * z;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
  EXPECT_NEAR(nsum / n, 0.0, 0.01);
  EXPECT_NEAR(nsum2 / n, 1.0, 0.02);
  EXPECT_NE(philox_u32(7, 3, 0), philox_u32(8, 3, 0));
  EXPECT_NE(philox_u32(7, 3, 0), philox_u32(7, 4, 0));
}

// ---------------------------------------------------------------- one parser (core/parse.h)

TEST(Parse, NumbersAreWholeTokens) {
  EXPECT_EQ(parse_int("42", "--batch"), 42);
  EXPECT_EQ(parse_int("-3", "x"), -3);
  EXPECT_EQ(parse_int("+3", "x"), 3);
  EXPECT_DOUBLE_EQ(parse_float("1e-3", "--lr"), 1e-3);
  EXPECT_DOUBLE_EQ(parse_float("0.5", "--lr"), 0.5);
  EXPECT_EQ(parse_uint("18446744073709551615", "--seed"), UINT64_MAX);
  EXPECT_TRUE(test::throws_error([] { parse_int("3x", "--batch"); }, {"--batch", "integer", "'3x'"}));
  EXPECT_TRUE(test::throws_error([] { parse_int("", "--batch"); }, {"--batch", "''"}));
  EXPECT_TRUE(test::throws_error([] { parse_int("1.5", "stride"); }, {"stride", "'1.5'"}));
  EXPECT_TRUE(test::throws_error([] { parse_int("99999999999999999999", "n"); }, {"n", "integer"}));
  EXPECT_TRUE(test::throws_error([] { parse_float("nan", "--lr"); }, {"--lr", "finite", "'nan'"}));
  EXPECT_TRUE(test::throws_error([] { parse_float("inf", "--lr"); }, {"--lr", "'inf'"}));
  EXPECT_TRUE(test::throws_error([] { parse_float("0.1 ", "--lr"); }, {"--lr"}));
  // --seed -1 must not wrap around to 2^64 - 1.
  EXPECT_TRUE(test::throws_error([] { parse_uint("-1", "--seed"); }, {"--seed", "non-negative", "'-1'"}));
  EXPECT_THROW(parse_int("x", "y"), UsageError);
}

TEST(Parse, ListsPairsAndBools) {
  EXPECT_EQ(parse_int_list("1,2,3", "--batch"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(parse_float_list("0.5:2", "gamma", ':'), (std::vector<double>{0.5, 2}));
  EXPECT_EQ(parse_int_pair("2", "stride"), (std::pair<int64_t, int64_t>{2, 2}));
  EXPECT_EQ(parse_int_pair("2,1", "stride"), (std::pair<int64_t, int64_t>{2, 1}));
  EXPECT_TRUE(test::throws_error([] { parse_int_pair("1,2,3", "pad"); }, {"pad", "pair", "'1,2,3'"}));
  EXPECT_TRUE(test::throws_error([] { parse_int_list("1,,3", "--batch"); }, {"--batch", "''"}));
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_TRUE(parse_bool("1", "b") && parse_bool("true", "b") && !parse_bool("0", "b") && !parse_bool("off", "b"));
  EXPECT_TRUE(test::throws_error([] { parse_bool("2", "count_include_pad"); }, {"count_include_pad", "'2'"}));
  EXPECT_FALSE(try_parse_int("7.0"));
  EXPECT_EQ(try_parse_float("7"), 7.0);
  EXPECT_EQ(try_parse_uint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(try_parse_uint("18446744073709551616"));
  EXPECT_FALSE(try_parse_uint("-1"));
  EXPECT_FALSE(try_parse_uint("+1"));
  EXPECT_FALSE(try_parse_uint(""));
  EXPECT_FALSE(try_parse_uint("1 "));
}

TEST(Parse, DeviceIndices) {
  EXPECT_EQ(parse_device("cuda:0"), Device(DeviceType::cuda, 0));
  EXPECT_EQ(parse_device("cuda:2147483647"), Device(DeviceType::cuda, 2147483647));
  for (const char* bad : {"cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda:2147483648", "cuda:1 "})
    EXPECT_TRUE(test::throws_error([&] { parse_device(bad); }, {"device", cat("'", bad, "'"), "cuda:N"})) << bad;
}

// ---------------------------------------------------------------- dispatch stubs (core/dispatch.h)

int twice_cpu(const Exec&, int v) {
  return 2 * v;
}
int twice_emu(const Exec&, int v) {
  return 20 * v;
}
int twice_cuda(const Exec&, int v) {
  return 200 * v;
}

TEST(Dispatch, PicksTheSlotOfTheDeviceAndBackend) {
  static DispatchStub<int(const Exec&, int)> stub{"twice"};
  EXPECT_TRUE(stub.define(Slot::cpu, twice_cpu));
  EXPECT_EQ(stub(Exec{kCPU}, 3), 6);
  EXPECT_TRUE(test::throws_error([] { stub(Exec{kEmu}, 3); }, {"twice", "emu"}));
  EXPECT_TRUE(stub.define(Slot::emu, twice_emu) && stub.define(Slot::cuda, twice_cuda));
  EXPECT_EQ(stub(Exec{kEmu}, 3), 60);
  EXPECT_EQ(stub(Exec{kCUDA}, 3), 600);
  // Backend cudnn needs its module (core/library_module.h), which this program cannot load (it does not export
  // fovea's symbols to it), or a build without cuDNN has none: either way the backend is refused by name
  // rather than something else run silently. tests/cudnn_test.cpp (CudnnModule) covers a program that loads it.
#if FOVEA_HAVE_CUDNN
  EXPECT_TRUE(test::throws_error([] { stub(Exec{kCUDA, Backend::cudnn}, 3); }, {"twice", "libfovea_cudnn.so"}));
#else
  EXPECT_TRUE(test::throws_error([] { stub(Exec{kCUDA, Backend::cudnn}, 3); }, {"twice", "cudnn"}));
#endif
  // The same for backend onednn (its module is libfovea_onednn.so); where it runs is checked before that.
#if FOVEA_HAVE_ONEDNN
  EXPECT_TRUE(test::throws_error(
      [] {
        stub(Exec{kCPU, Backend::onednn}, 3);
      },
      {"twice", "libfovea_onednn.so", "tried:", "undefined symbol"}));
#else
  EXPECT_TRUE(test::throws_error([] { stub(Exec{kCPU, Backend::onednn}, 3); }, {"twice", "no oneDNN"}));
#endif
  EXPECT_TRUE(test::throws_error([] { stub(Exec{kEmu, Backend::onednn}, 3); }, {"twice", "onednn", "cpu only"}));
  EXPECT_EQ(Exec({kCPU, Backend::onednn}).slot(), Slot::onednn);
  EXPECT_EQ(Exec({kCUDA, Backend::cudnn}).slot(), Slot::cudnn);
  EXPECT_TRUE(stub.has(Slot::emu) && !stub.has(Slot::cudnn));
  EXPECT_STREQ(stub.name(), "twice");
  EXPECT_EQ(parse_backend("cudnn"), Backend::cudnn);
  EXPECT_EQ(parse_backend("onednn"), Backend::onednn);
  EXPECT_EQ(parse_backend("reference"), Backend::custom);
  EXPECT_TRUE(test::throws_error([] { parse_backend("cudnnn"); }, {"'cudnnn'", "custom, reference, cudnn or onednn"}));
}

TEST(DispatchDeathTest, TwoImplementationsOfOneSlotAbortAtStartUp) {
  static DispatchStub<int(const Exec&, int)> stub{"dup"};
  stub.define(Slot::cpu, twice_cpu);
  EXPECT_DEATH(stub.define(Slot::cpu, twice_emu), "two implementations registered for slot cpu of dup");
}

}  // namespace
}  // namespace fovea
