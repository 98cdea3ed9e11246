// Devices: 'cpu' (the C++ reference), 'emu' (our CUDA kernels on the CPU emulator), 'cuda' (a GPU).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace fovea {

enum class DeviceType : uint8_t { cpu, emu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;  // GPU ordinal for cuda

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}
  bool is_host_memory() const { return type != DeviceType::cuda; }  // cpu and emu memory is host RAM
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "emu", "cuda:0"
};

inline constexpr Device kCPU{DeviceType::cpu};
inline constexpr Device kEmu{DeviceType::emu};
inline constexpr Device kCUDA{DeviceType::cuda};

// "cpu", "emu", "cuda", "cuda:1"; anything else throws naming the text. Does not check availability.
Device parse_device(std::string_view text);

// True when this build has device 'cuda' and the runtime sees at least one GPU. Any error from the
// device count (no driver, no device) means false.
bool cuda_available();
// Why cuda_available() is false, as a sentence for users and skipped tests; empty when it is true.
std::string cuda_unavailable_reason();
// Throws a clear error when `d` cannot be used in this build or on this machine.
void require_device(Device d);

}  // namespace fovea
