// IDX (MNIST) parsing, gzip decompression and the images + labels pairing.
#include "fuzz/fuzz_util.h"
#include "layers/data/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_fovea_errors([&] { fuzz::check_tensor(data::parse_idx(bytes, "fuzz.idx")); });
  // gzip, with a small output limit so that a decompression bomb is an error, not an OOM.
  fuzz::expect_only_fovea_errors([&] {
    const std::string raw = data::gunzip(bytes, "fuzz.gz", size_t(1) << 24);
    fuzz::check_tensor(data::parse_idx(raw, "fuzz.idx.gz"));
  });
  // The first byte splits the rest into an images file and a labels file.
  if (size > 1) {
    const size_t cut = 1 + size_t(data[0]) * (size - 1) / 255;
    const std::string images = bytes.substr(1, cut - 1), labels = bytes.substr(cut);
    fuzz::expect_only_fovea_errors([&] {
      const data::Dataset ds =
          data::parse_idx_dataset(images, "img", labels, "lab", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
      fuzz::check_tensor(ds.images);
      fuzz::check_tensor(ds.labels);
      ds.validate();
    });
  }
  return 0;
}
