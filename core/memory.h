// Device memory: RAII move-only buffers, explicit copies between devices, a caching allocator for
// 'cuda' (cudaMalloc is slow and synchronising; freed blocks are kept and reused).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "core/device.h"

namespace fovea {

using StreamHandle = void*;  // a cudaStream_t for 'cuda'; ignored on host devices

// The calling thread's current stream (PyTorch's getCurrentCUDAStream): the legacy default stream (null)
// until a StreamGuard (core/stream.h) names another. Copies and fills that are not given a stream run on
// it, so that code working on its own stream orders them after its kernels, never beside them.
StreamHandle current_stream();

// Raw allocation on a device, 256-byte aligned on the host (as cudaMalloc), through the caching allocators below.
// Prefer Buffer.
void* device_alloc(size_t bytes, Device d);
void device_free(void* p, Device d);

// While one exists, every new allocation is filled with 0xFF bytes (NaN floats, -1 integers), so a test can
// see whether an op wrote every element of its outputs.
class ScopedAllocationPoison {
 public:
  ScopedAllocationPoison();
  ~ScopedAllocationPoison();
  ScopedAllocationPoison(const ScopedAllocationPoison&) = delete;
  ScopedAllocationPoison& operator=(const ScopedAllocationPoison&) = delete;
};

// The one way bytes move between devices, in the order of `stream`. Host<->host is memcpy. A copy between
// the host and a device returns when it is complete (a cudaMemcpyAsync and a synchronisation of `stream`:
// a host synchronisation, counted, see core/stream.h), so the host memory may be reused at once. A copy
// from device to device is only enqueued (stream-ordered, like every kernel) and does not wait.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes,
                StreamHandle stream = current_stream());
// A copy from host memory to `dst_device` that does not wait: `src` is copied at once into page-locked
// staging memory (so it may be reused when this returns), from which the device reads it in the order of
// `stream`. No host synchronisation, on any device (host to emu or cpu is a memcpy). For the uploads of a
// training step: its batch, the optimizer's tensor list.
void upload_bytes(void* dst, Device dst_device, const void* src, size_t bytes, StreamHandle stream = current_stream());
// Sets `bytes` bytes to the byte value `value` (0 for zeros, 0xFF for NaN poison); enqueued on `stream`.
void fill_bytes(void* dst, Device d, int value, size_t bytes, StreamHandle stream = current_stream());
// Waits for all work on the device (a host synchronisation on emu and cuda; nothing on cpu).
void synchronize(Device d);

class Buffer {
 public:
  Buffer() = default;
  Buffer(size_t bytes, Device d);
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  void reset();

 private:
  void swap(Buffer& o) noexcept;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_{};
};

// Keeps freed blocks by size and hands them out again; statistics for users and tests.
// Generic over the raw allocator so that it is testable without a GPU. Single stream ordering:
// a block freed after work queued on the compute stream is reused by later work on that stream.
class CachingAllocator {
 public:
  using RawAlloc = void* (*)(size_t);
  using RawFree = void (*)(void*);
  // `gpu`: GPU memory (running out is a DeviceError); else host memory, which devices cpu and emu use (running
  // out is a plain runtime error: the request was too large for this machine, nothing failed in a device).
  CachingAllocator(RawAlloc alloc, RawFree free, bool gpu) : raw_alloc_(alloc), raw_free_(free), gpu_(gpu) {}
  ~CachingAllocator() { release_cached(); }

  void* allocate(size_t bytes);
  void deallocate(void* p);
  void release_cached();  // returns every cached block to the raw allocator

  struct Stats {
    size_t bytes_in_use = 0, peak_bytes_in_use = 0, bytes_cached = 0;
    size_t raw_allocations = 0, reuses = 0;
  };
  Stats stats() const;
  static size_t round_size(size_t bytes);  // 512-byte granularity; at least 512

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool gpu_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_blocks_;  // size -> block
  std::map<void*, size_t> live_;              // block -> size
  Stats stats_;
};

// The allocators behind device_alloc: 'cuda' (throws if this build has no CUDA), and 'cpu'/'emu'
// (bypassed in sanitizer builds so that AddressSanitizer sees exact allocation sizes).
CachingAllocator& cuda_allocator();
CachingAllocator& host_allocator();

// Scratch space for kernels (im2col columns, split-K partials, cuDNN workspaces). get() returns at
// least `bytes`, valid until the next get() on the same arena; growing frees the old block.
class Workspace {
 public:
  explicit Workspace(Device d, size_t limit_bytes = size_t(1) << 32) : device_(d), limit_(limit_bytes) {}
  // A workspace over `bytes` of memory the caller owns and keeps alive (kernel tests hand out poisoned,
  // misaligned scratch this way); asking it for more is an error.
  Workspace(Device d, void* external, size_t bytes) : device_(d), limit_(bytes), external_(external) {}
  void* get(size_t bytes);
  size_t capacity() const { return buffer_.bytes(); }
  size_t limit() const { return limit_; }
  Device device() const { return device_; }

 private:
  Device device_;
  size_t limit_;
  Buffer buffer_;
  void* external_ = nullptr;
};

}  // namespace fovea
