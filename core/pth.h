// PyTorch weight files (.pth / .pt written by torch.save) read without Python and without running
// anything from the file.
//
// A torch.save file is either a zip archive (PyTorch >= 1.6: `<prefix>/data.pkl`, the pickled
// object, and `<prefix>/data/<key>`, one entry of raw little-endian bytes per storage) or the
// legacy format (before 1.6, or _use_new_zipfile_serialization=False: five pickles in a row, the
// last a list of storage keys, then each storage as an int64 element count and its bytes). Tensors
// are pickled as calls of torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), with
// the storage given by a persistent id ('storage', torch.FloatStorage, key, location, numel).
//
// The pickle is read by a small stack machine that knows only the opcodes a state_dict uses
// (protocols 2 to 5) and builds only inert values: None, bools, ints, floats, strings, tuples,
// lists, dicts, storages and tensors. Globals are an allowlist (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter and the torch.*Storage
// and torch.cuda.*Storage types); any other opcode or global is refused with an error naming the
// file, the opcode or global and its byte offset. Nothing from the file is ever called.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace fovea {

struct TorchWeights {
  // Host tensors by state_dict name: float32 for every floating storage (float16, bfloat16 and
  // float64 converted; float16/bfloat16 exactly), int64 for torch.long (e.g. batch norm's
  // num_batches_tracked), int32 for int/short/char, uint8 for uint8/bool. Views (offsets,
  // strides, shared storages) are materialised as contiguous tensors.
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> torch_dtypes;  // by name: torch's dtype in the file ("float16", ...)
  std::string format;                               // "zip" or "legacy"
  // "" when the pickled object is the state_dict itself; "state_dict" or "model" when it is a
  // checkpoint dict holding the state_dict under that key.
  std::string state_dict_key;
};

// Errors (malformed container or pickle, refused opcode or global, sizes out of range, a
// top-level object that holds no state_dict) are fovea::Error naming `name` (the file).
TorchWeights parse_pth(const std::string& bytes, const std::string& name);
TorchWeights read_pth(const std::string& path);

}  // namespace fovea
