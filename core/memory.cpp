#include "core/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/counters.h"
#include "core/emu/check.h"
#include "core/error.h"

#if FOVEA_HAVE_CUDA
#include "core/cuda_check.h"
#endif

namespace fovea {

// 256-byte aligned, as cudaMalloc: the emulator's memory metrics (sectors, 128-byte lines) depend on it.
static void* host_raw_alloc(size_t bytes) {
  void* p = nullptr;
  return posix_memalign(&p, 256, bytes) == 0 ? p : nullptr;
}

// Host memory is cached too: a training step frees and allocates the same large activations every
// step, and giving them back to the OS means page faults on every step (measured: a large slowdown).
CachingAllocator& host_allocator() {
  static CachingAllocator* allocator = new CachingAllocator(host_raw_alloc, std::free, false);
  return *allocator;
}

namespace {
std::atomic<int> g_poison_allocations{0};

void* allocate(size_t bytes, Device d) {
  if (d.is_host_memory()) {
#if FOVEA_EMU_SANITIZE
    void* p = host_raw_alloc(bytes);  // exact size, so AddressSanitizer sees every overflow
    if (!p) throw DeviceError(cat("out of host memory allocating ", bytes, " bytes on ", d.str()), __FILE__, __LINE__);
#else
    void* p = host_allocator().allocate(bytes);
#endif
    // The emulator's memcheck knows every emu allocation's exact size (the caching allocator rounds it up).
    if (d.type == DeviceType::emu) emu::register_allocation(p, bytes);
    return p;
  }
  require_device(d);
  return cuda_allocator().allocate(bytes);
}
}  // namespace

void* device_alloc(size_t bytes, Device d) {
  if (bytes == 0) return nullptr;
  void* p = allocate(bytes, d);
  if (g_poison_allocations.load(std::memory_order_relaxed) > 0) {
    // Poison is not data: on emu it stays "never written" for initcheck (fill_bytes would mark it written).
    if (d.is_host_memory())
      std::memset(p, 0xFF, bytes);
    else
      fill_bytes(p, d, 0xFF, bytes);
  }
  return p;
}

ScopedAllocationPoison::ScopedAllocationPoison() {
  ++g_poison_allocations;
}
ScopedAllocationPoison::~ScopedAllocationPoison() {
  --g_poison_allocations;
}

void device_free(void* p, Device d) {
  if (!p) return;
  if (d.is_host_memory()) {
    if (d.type == DeviceType::emu) emu::unregister_allocation(p);
#if FOVEA_EMU_SANITIZE
    std::free(p);
#else
    host_allocator().deallocate(p);
#endif
    return;
  }
  cuda_allocator().deallocate(p);
}

namespace {

// A copy or wait that a GPU would make the host wait for: between the host (cpu) and a device's memory, or
// between host memory and cuda memory.
bool crosses_host_and_device(Device a, Device b) {
  const bool a_device = a.type != DeviceType::cpu, b_device = b.type != DeviceType::cpu;
  return a_device != b_device || a.is_host_memory() != b.is_host_memory();
}

}  // namespace

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes, StreamHandle stream) {
  if (bytes == 0) return;
  // Counted on emu too: its copies are memcpy, but the same copy on a GPU waits for the device.
  if (crosses_host_and_device(dst_device, src_device)) detail::count_host_sync();
  if (dst_device.is_host_memory() && src_device.is_host_memory()) {
    std::memcpy(dst, src, bytes);
    if (dst_device.type == DeviceType::emu) emu::note_host_write(dst, bytes);  // initcheck: written
    return;
  }
#if FOVEA_HAVE_CUDA
  const cudaMemcpyKind kind = dst_device.is_host_memory()   ? cudaMemcpyDeviceToHost
                              : src_device.is_host_memory() ? cudaMemcpyHostToDevice
                                                            : cudaMemcpyDeviceToDevice;
  auto s = static_cast<cudaStream_t>(stream);
  FOVEA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  // Host memory may be reused when this returns (it may be page-locked, and then the copy is truly
  // asynchronous); device-to-device copies stay in stream order like kernels.
  if (kind != cudaMemcpyDeviceToDevice) FOVEA_CUDA_CHECK(cudaStreamSynchronize(s));
#else
  (void)stream;
  FOVEA_FAIL("copy between ", src_device.str(), " and ", dst_device.str(), ": this build has no CUDA support");
#endif
}

#if FOVEA_HAVE_CUDA
namespace {

// Page-locked blocks through which upload_bytes sends host data. A block is free again once the event
// recorded after its copy has completed; cudaEventQuery asks without waiting, and a busy pool grows instead
// of waiting (by a few blocks per step while the host runs ahead of the device). Never freed: cudaFreeHost
// synchronises the device, and the pool is small.
class StagingPool {
 public:
  void upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
    Block* b = acquire(bytes);
    std::memcpy(b->host, src, bytes);
    try {
      FOVEA_CUDA_CHECK(cudaMemcpyAsync(dst, b->host, bytes, cudaMemcpyHostToDevice, stream));
      FOVEA_CUDA_CHECK(cudaEventRecord(b->done, stream));
    } catch (...) {
      release(b, false);
      throw;
    }
    release(b, true);
  }

 private:
  struct Block {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
    bool recorded = false;  // `done` guards a copy that may still read the block
    bool in_use = false;    // between acquire and release
  };

  Block* acquire(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : blocks_) {
      if (b->in_use || b->bytes < bytes || b->bytes > 4 * bytes + 65536) continue;
      if (b->recorded) {
        const cudaError_t e = cudaEventQuery(b->done);
        if (e == cudaErrorNotReady) continue;  // not an error: the device has not read it yet
        FOVEA_CUDA_CHECK(e);
      }
      b->in_use = true;
      return b.get();
    }
    auto b = std::make_unique<Block>();
    b->bytes = bytes < 4096 ? 4096 : bytes;
    FOVEA_CUDA_CHECK(cudaHostAlloc(&b->host, b->bytes, cudaHostAllocPortable));
    FOVEA_CUDA_CHECK(cudaEventCreateWithFlags(&b->done, cudaEventDisableTiming));
    b->in_use = true;
    blocks_.push_back(std::move(b));
    return blocks_.back().get();
  }

  void release(Block* b, bool recorded) {
    std::lock_guard<std::mutex> lock(mu_);
    b->recorded = recorded;
    b->in_use = false;
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Block>> blocks_;
};

StagingPool& staging_pool() {
  static StagingPool* pool = new StagingPool;  // leaked on purpose, like the CUDA allocator
  return *pool;
}

}  // namespace
#endif

void upload_bytes(void* dst, Device dst_device, const void* src, size_t bytes, StreamHandle stream) {
  if (bytes == 0) return;
  if (dst_device.is_host_memory()) {
    std::memcpy(dst, src, bytes);
    if (dst_device.type == DeviceType::emu) emu::note_host_write(dst, bytes);  // initcheck: written
    return;
  }
#if FOVEA_HAVE_CUDA
  staging_pool().upload(dst, src, bytes, static_cast<cudaStream_t>(stream));
#else
  (void)stream;
  FOVEA_FAIL("upload to ", dst_device.str(), ": this build has no CUDA support");
#endif
}

void fill_bytes(void* dst, Device d, int value, size_t bytes, StreamHandle stream) {
  if (bytes == 0) return;
  if (d.is_host_memory()) {
    std::memset(dst, value, bytes);
    if (d.type == DeviceType::emu) emu::note_host_write(dst, bytes);  // initcheck: written
    return;
  }
#if FOVEA_HAVE_CUDA
  FOVEA_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, static_cast<cudaStream_t>(stream)));
#else
  (void)stream;
  FOVEA_FAIL("fill on ", d.str(), ": this build has no CUDA support");
#endif
}

void synchronize(Device d) {
  if (d.type == DeviceType::cpu) return;
  detail::count_host_sync();
#if FOVEA_HAVE_CUDA
  if (!d.is_host_memory()) FOVEA_CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

Buffer::Buffer(size_t bytes, Device d) : data_(device_alloc(bytes, d)), bytes_(bytes), device_(d) {}

void Buffer::reset() {
  device_free(data_, device_);
  data_ = nullptr;
  bytes_ = 0;
}

void Buffer::swap(Buffer& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(bytes_, o.bytes_);
  std::swap(device_, o.device_);
}

size_t CachingAllocator::round_size(size_t bytes) {
  return bytes < 512 ? 512 : (bytes + 511) / 512 * 512;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  // Best fit, but never hand out a block more than twice the request: that would waste memory.
  auto it = free_blocks_.lower_bound(size);
  if (it != free_blocks_.end() && it->first <= 2 * size) {
    p = it->second;
    live_[p] = it->first;
    stats_.bytes_cached -= it->first;
    stats_.bytes_in_use += it->first;
    free_blocks_.erase(it);
    ++stats_.reuses;
  } else {
    p = raw_alloc_(size);
    if (!p && !free_blocks_.empty()) {  // out of memory: give the cache back and try once more
      for (auto& [sz, blk] : free_blocks_) raw_free_(blk);
      free_blocks_.clear();
      stats_.bytes_cached = 0;
      p = raw_alloc_(size);
    }
    if (!p && gpu_)
      throw DeviceError(cat("out of GPU memory allocating ", bytes, " bytes (", stats_.bytes_in_use, " bytes in use)"),
                        __FILE__, __LINE__);
    if (!p)
      throw Error(cat("out of host memory allocating ", bytes, " bytes (", stats_.bytes_in_use,
                      " bytes in use): the request is too large for this machine"));
    live_[p] = size;
    stats_.bytes_in_use += size;
    ++stats_.raw_allocations;
  }
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  FOVEA_CHECK(it != live_.end(), "caching allocator: free of a pointer it did not allocate");
  stats_.bytes_in_use -= it->second;
  stats_.bytes_cached += it->second;
  free_blocks_.emplace(it->second, p);
  live_.erase(it);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, p] : free_blocks_) raw_free_(p);
  free_blocks_.clear();
  stats_.bytes_cached = 0;
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

#if FOVEA_HAVE_CUDA
static void* cuda_raw_alloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;
  }
  FOVEA_CUDA_CHECK(err);
  return p;
}
static void cuda_raw_free(void* p) {
  cudaFree(p);
}  // no check: runs at exit, after the driver may be gone
#endif

CachingAllocator& cuda_allocator() {
#if FOVEA_HAVE_CUDA
  // Leaked on purpose: freeing at static destruction time races the CUDA runtime's own teardown.
  static CachingAllocator* allocator = new CachingAllocator(cuda_raw_alloc, cuda_raw_free, true);
  return *allocator;
#else
  FOVEA_FAIL("device 'cuda': this build of fovea has no CUDA support");
#endif
}

void* Workspace::get(size_t bytes) {
  if (external_) {
    FOVEA_CHECK(bytes <= limit_, "workspace on ", device_.str(), ": ", bytes,
                " bytes requested, the caller's buffer has ", limit_);
    return external_;
  }
  if (bytes <= buffer_.bytes()) return buffer_.data();
  FOVEA_CHECK(bytes <= limit_, "workspace on ", device_.str(), ": ", bytes, " bytes requested, limit is ", limit_);
  buffer_.reset();
  buffer_ = Buffer(bytes, device_);
  return buffer_.data();
}

}  // namespace fovea
