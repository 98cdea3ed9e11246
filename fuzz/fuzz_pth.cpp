// PyTorch files (core/pth.h: our zip reader, the allowlisted unpickler, view materialisation and the
// legacy format): only fovea::Error may come out, and what is read must be consistent.
#include "core/pth.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] {
    const TorchWeights w = parse_pth(bytes, "fuzz.pth");
    if (w.format != "zip" && w.format != "legacy") std::abort();
    if (w.torch_dtypes.size() != w.tensors.size()) std::abort();
    for (const auto& [name, t] : w.tensors) {
      fuzz::check_tensor(t);
      if (!w.torch_dtypes.count(name)) std::abort();
    }
  });
  return 0;
}
