// Device memory as the emulator's memory checks see it (FOVEA_EMU_CHECK, see emu.h and README.md).
//
// Every allocation on device 'emu' (core/memory.cpp) is registered with its exact size, so memcheck can tell an
// access one element past a tensor from a legal one although the caching allocator hands out 512-byte blocks.
// Registration is a map insert per allocation, with or without checks; memory a test hands to a kernel without
// device_alloc must be registered (ScopedAllocation) or memcheck reports the access as outside every allocation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fovea::emu {

void register_allocation(const void* p, size_t bytes);
void unregister_allocation(const void* p);  // later accesses to it are use-after-free until it is reused
// Bytes the host wrote (copies, fills): initcheck counts them as initialised.
void note_host_write(const void* p, size_t bytes);

class ScopedAllocation {
 public:
  ScopedAllocation(const void* p, size_t bytes) : p_(p) { register_allocation(p, bytes); }
  ~ScopedAllocation() { unregister_allocation(p_); }
  ScopedAllocation(const ScopedAllocation&) = delete;
  ScopedAllocation& operator=(const ScopedAllocation&) = delete;

 private:
  const void* p_;
};

}  // namespace fovea::emu
