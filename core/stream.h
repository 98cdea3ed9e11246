// Streams and events. On 'cuda' they wrap cudaStream_t / cudaEvent_t; on host devices work is
// synchronous, the stream is null and events read a steady clock, so timing code is device-neutral.
#pragma once
#include <chrono>

#include "core/device.h"
#include "core/memory.h"

namespace fovea {

class Stream {
 public:
  explicit Stream(Device d = kCPU);  // creates a non-blocking CUDA stream on 'cuda'
  ~Stream();
  Stream(Stream&& o) noexcept : device_(o.device_), handle_(o.handle_) { o.handle_ = nullptr; }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream& operator=(Stream&&) = delete;

  StreamHandle handle() const { return handle_; }
  Device device() const { return device_; }
  void synchronize() const;

 private:
  Device device_;
  StreamHandle handle_ = nullptr;
};

class Event {
 public:
  explicit Event(Device d = kCPU);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(const Stream& s);
  void synchronize() const;
  // Milliseconds from `start` to this event (both recorded, both complete).
  float elapsed_ms_since(const Event& start) const;

 private:
  Device device_;
  void* handle_ = nullptr;  // cudaEvent_t
  std::chrono::steady_clock::time_point host_time_{};
};

}  // namespace fovea
