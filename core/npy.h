// NumPy .npy files (format versions 1.0, 2.0, 3.0; little-endian float32, int32, int64, uint8;
// C order). The way users hand data to `fovea op` and read results back.
#pragma once
#include <string>

#include "core/tensor.h"

namespace fovea {

// A tensor on the CPU. A malformed or truncated file throws naming the file and what is wrong.
Tensor read_npy(const std::string& path);
// Writes a host tensor (cpu or emu) atomically, format 1.0.
void write_npy(const std::string& path, const Tensor& t);
// The same on bytes in memory (tests, fuzzing); `name` is used in error messages.
Tensor parse_npy(const std::string& bytes, const std::string& name);
std::string serialize_npy(const Tensor& t);

}  // namespace fovea
