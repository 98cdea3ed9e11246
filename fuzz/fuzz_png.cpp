// PNG decoding (core/png_io.h, libpng underneath): our setjmp error path, limits and conversion.
#include "core/png_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] {
    const PngImage img = decode_png(bytes, "fuzz.png");
    fuzz::check_tensor(img.pixels);
    const int64_t C = img.pixels.size(0);
    if (img.pixels.ndim() != 3 || C < 1 || C > 4 || img.has_alpha != (C == 2 || C == 4)) std::abort();
    const float* p = img.pixels.data<float>();
    for (int64_t i = 0; i < img.pixels.numel(); ++i)
      if (!(p[i] >= 0.0f && p[i] <= 1.0f)) std::abort();
  });
  return 0;
}
