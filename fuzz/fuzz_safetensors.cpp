// safetensors files (core/safetensors.h); a parsed file must serialise and parse back identically.
#include <cstring>

#include "core/safetensors.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] {
    const Safetensors s = parse_safetensors(bytes, "fuzz.safetensors");
    for (const auto& [name, t] : s.tensors) fuzz::check_tensor(t);
    // Names the writer refuses (empty) can be read; only round-trip what can be written.
    if (s.tensors.count("")) return;
    const Safetensors back = parse_safetensors(serialize_safetensors(s.tensors, s.metadata), "fuzz-again");
    bool same = back.metadata == s.metadata && back.tensors.size() == s.tensors.size();
    for (const auto& [name, t] : s.tensors) {
      const auto it = back.tensors.find(name);
      same = same && it != back.tensors.end() && it->second.shape() == t.shape() && it->second.dtype() == t.dtype() &&
             (t.nbytes() == 0 || std::memcmp(it->second.raw_data(), t.raw_data(), t.nbytes()) == 0);
    }
    if (!same) {
      std::fprintf(stderr, "fuzz: safetensors round trip changed the content\n");
      std::abort();
    }
  });
  return 0;
}
