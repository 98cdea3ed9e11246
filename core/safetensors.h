// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
// "__metadata__": {"key": "value"}}, then the tensor bytes. fovea's checkpoints and weight exports,
// readable by the Python `safetensors` package.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace fovea {

struct Safetensors {
  std::map<std::string, Tensor> tensors;        // host (cpu) tensors, by name
  std::map<std::string, std::string> metadata;  // the optional "__metadata__" string map
};

// dtypes: float32 "F32", int32 "I32", int64 "I64", uint8 "U8" (and float16 "F16", bfloat16 "BF16").
// Tensors must be on a host device (cpu or emu). Data is laid out like the reference writer does:
// largest element size first, then by name, the header padded with spaces to a multiple of 8 bytes,
// so every tensor starts at an offset aligned to its element size. Names must be non-empty and not
// "__metadata__".
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
// Atomic: a temporary file renamed over `path`.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Validates everything (header length vs file size, JSON, known dtype, shape product vs byte size,
// offsets in range, contiguous, covering the data exactly) and throws fovea::Error naming `name`
// (the file) and what is wrong.
Safetensors parse_safetensors(const std::string& bytes, const std::string& name);
Safetensors read_safetensors(const std::string& path);

// For weights, which fovea computes with in float32: the same, with every F16 and BF16 tensor
// converted to float32 exactly (core/float16.h); F32 and integer tensors as stored.
Safetensors parse_safetensors_as_float32(const std::string& bytes, const std::string& name);
Safetensors read_safetensors_as_float32(const std::string& path);

}  // namespace fovea
