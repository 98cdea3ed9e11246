#include "core/device.h"

#include <limits>
#include <optional>

#include "core/error.h"
#include "core/parse.h"

#if FOVEA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace fovea {

std::string Device::str() const {
  switch (type) {
    case DeviceType::cpu: return "cpu";
    case DeviceType::emu: return "emu";
    case DeviceType::cuda: return cat("cuda:", index);
  }
  return "?";
}

Device parse_device(std::string_view text) {
  if (text == "cpu") return kCPU;
  if (text == "emu") return kEmu;
  if (text == "cuda") return kCUDA;
  if (text.substr(0, 5) == "cuda:") {
    const std::optional<uint64_t> idx = try_parse_uint(text.substr(5));
    FOVEA_CHECK(idx && *idx <= uint64_t(std::numeric_limits<int>::max()), "device: '", text,
                "' is not a device (expected cpu, emu, cuda or cuda:N)");
    return Device(DeviceType::cuda, int(*idx));
  }
  FOVEA_FAIL("device: '", text, "' is not a device (expected cpu, emu, cuda or cuda:N)");
}

std::string cuda_unavailable_reason() {
#if FOVEA_HAVE_CUDA
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return cat("no usable GPU: cudaGetDeviceCount failed with ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
               ")");
  }
  if (count == 0) return "no GPU: the CUDA runtime sees 0 devices";
  return "";
#else
  return "this build of fovea has no CUDA support (the CUDA toolkit was not found or FOVEA_WITH_CUDA=OFF)";
#endif
}

bool cuda_available() {
  static const bool available = cuda_unavailable_reason().empty();
  return available;
}

void require_device(Device d) {
  if (d.type != DeviceType::cuda) return;
  FOVEA_CHECK(cuda_available(), "device 'cuda' requested but ", cuda_unavailable_reason());
#if FOVEA_HAVE_CUDA
  int count = 0;
  cudaGetDeviceCount(&count);
  FOVEA_CHECK(d.index >= 0 && d.index < count, "device '", d.str(), "' requested but only ", count,
              " GPU(s) are visible");
#endif
}

}  // namespace fovea
