// Image files (layers/data/image.h: decode_image, which sniffs JPEG or PNG and runs our libjpeg-turbo
// driver core/jpeg_io.cpp or libpng driver core/png_io.cpp) and the eval transform on what decodes:
// only fovea::Error may come out, and every image must own exactly its samples.
#include <cstdlib>

#include "fuzz/fuzz_util.h"
#include "layers/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] {
    const Image8 img = data::decode_image(bytes, "fuzz.img");
    if (img.width <= 0 || img.height <= 0 || img.samples.size() != size_t(img.width * img.height * img.channels()))
      std::abort();
    // The transform on small images only: a fuzzer's 16000 x 16000 JPEG would just be slow.
    if (img.width * img.height > 512 * 512) return;
    data::EvalTransform t;
    t.resize = 1 + int64_t(size % 40);
    t.crop = 1 + int64_t(size % 37);
    const Tensor x = data::eval_preprocess(data::to_rgb(img), t);
    fuzz::check_tensor(x);
    if (x.size(0) != 3 || x.size(1) != t.crop || x.size(2) != t.crop) std::abort();
  });
  return 0;
}
