// NumPy .npy files (core/npy.h); a parsed file must serialise and parse back to the same tensor.
#include <cstring>

#include "core/npy.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] {
    const Tensor t = parse_npy(bytes, "fuzz.npy");
    fuzz::check_tensor(t);
    const Tensor back = parse_npy(serialize_npy(t), "fuzz-again.npy");
    if (!(back.shape() == t.shape()) || back.dtype() != t.dtype() ||
        (t.nbytes() && std::memcmp(back.raw_data(), t.raw_data(), t.nbytes()) != 0)) {
      std::fprintf(stderr, "fuzz: .npy round trip changed %s\n", t.str().c_str());
      std::abort();
    }
  });
  return 0;
}
