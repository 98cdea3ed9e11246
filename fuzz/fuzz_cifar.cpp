// CIFAR-10 and CIFAR-100 binary batches.
#include "fuzz/fuzz_util.h"
#include "layers/data/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fovea;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (data::CifarKind kind : {data::CifarKind::cifar10, data::CifarKind::cifar100})
    fuzz::expect_only_fovea_errors([&] {
      const data::Dataset ds = data::parse_cifar(bytes, "fuzz.bin", kind);
      fuzz::check_tensor(ds.images);
      fuzz::check_tensor(ds.labels);
      ds.validate();
    });
  return 0;
}
