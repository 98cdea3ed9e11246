// Streams and events. On 'cuda' they wrap cudaStream_t / cudaEvent_t; on host devices work is
// synchronous, the stream is null and events read a steady clock, so timing code is device-neutral.
//
// The current stream: each thread has one (core/memory.h: current_stream()), the legacy default stream
// until a StreamGuard names another. Tensor copies and fills without an explicit stream use it; code that
// runs its ops on a stream of its own puts a StreamGuard around them, so nothing lands on the legacy
// default stream behind its back.
//
// Every wait of the host for the device is counted (core/counters.h: host_sync_count()).
#pragma once
#include <chrono>
#include <cstdint>

#include "core/counters.h"
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
  void synchronize() const;  // a host synchronisation (counted) on emu and cuda

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
  void synchronize() const;  // a host synchronisation (counted) on emu and cuda
  // Milliseconds from `start` to this event (both recorded, both complete).
  float elapsed_ms_since(const Event& start) const;

 private:
  Device device_;
  void* handle_ = nullptr;  // cudaEvent_t
  std::chrono::steady_clock::time_point host_time_{};
};

// Makes `stream` the calling thread's current stream until the guard goes out of scope.
class StreamGuard {
 public:
  explicit StreamGuard(StreamHandle stream);
  explicit StreamGuard(const Stream& stream) : StreamGuard(stream.handle()) {}
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  StreamHandle saved_;
};

}  // namespace fovea
