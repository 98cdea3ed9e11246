#include "core/stream.h"

#include "core/error.h"

#if FOVEA_HAVE_CUDA
#include "core/cuda_check.h"
#endif

namespace fovea {

namespace {
thread_local StreamHandle t_current_stream = nullptr;
}  // namespace

StreamHandle current_stream() {
  return t_current_stream;
}

StreamGuard::StreamGuard(StreamHandle stream) : saved_(t_current_stream) {
  t_current_stream = stream;
}

StreamGuard::~StreamGuard() {
  t_current_stream = saved_;
}

Stream::Stream(Device d) : device_(d) {
  if (d.is_host_memory()) return;
  require_device(d);
#if FOVEA_HAVE_CUDA
  cudaStream_t s = nullptr;
  FOVEA_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  handle_ = s;
#endif
}

Stream::~Stream() {
#if FOVEA_HAVE_CUDA
  if (handle_) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
#endif
}

void Stream::synchronize() const {
  if (device_.type != DeviceType::cpu) detail::count_host_sync();
#if FOVEA_HAVE_CUDA
  if (!device_.is_host_memory()) FOVEA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
#endif
}

Event::Event(Device d) : device_(d) {
  if (d.is_host_memory()) return;
  require_device(d);
#if FOVEA_HAVE_CUDA
  cudaEvent_t e = nullptr;
  FOVEA_CUDA_CHECK(cudaEventCreate(&e));
  handle_ = e;
#endif
}

Event::~Event() {
#if FOVEA_HAVE_CUDA
  if (handle_) cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
#endif
}

void Event::record(const Stream& s) {
  FOVEA_CHECK(s.device() == device_, "Event::record: event on ", device_.str(), ", stream on ", s.device().str());
  if (device_.is_host_memory()) {
    host_time_ = std::chrono::steady_clock::now();
    return;
  }
#if FOVEA_HAVE_CUDA
  FOVEA_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), static_cast<cudaStream_t>(s.handle())));
#endif
}

void Event::synchronize() const {
  if (device_.type != DeviceType::cpu) detail::count_host_sync();
#if FOVEA_HAVE_CUDA
  if (handle_) FOVEA_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)));
#endif
}

float Event::elapsed_ms_since(const Event& start) const {
  if (device_.is_host_memory()) return std::chrono::duration<float, std::milli>(host_time_ - start.host_time_).count();
  float ms = 0;
#if FOVEA_HAVE_CUDA
  FOVEA_CUDA_CHECK(
      cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_), static_cast<cudaEvent_t>(handle_)));
#endif
  return ms;
}

}  // namespace fovea
