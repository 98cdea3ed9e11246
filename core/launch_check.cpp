#include "core/launch_check.h"

#include "core/error.h"

namespace fovea {
namespace detail {

void check_launch_config(const char* kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, size_t smem_bytes) {
  const unsigned long long threads = 1ull * bx * by * bz;
  FOVEA_CHECK(threads >= 1 && threads <= 1024, "launch of ", kernel, ": block (", bx, ",", by, ",", bz, ") has ",
              threads, " threads; must be 1..1024");
  FOVEA_CHECK(bz <= 64, "launch of ", kernel, ": block.z=", bz, " exceeds 64");
  FOVEA_CHECK(gx >= 1 && gy >= 1 && gz >= 1, "launch of ", kernel, ": empty grid (", gx, ",", gy, ",", gz, ")");
  FOVEA_CHECK(gy <= 65535 && gz <= 65535, "launch of ", kernel, ": grid (", gx, ",", gy, ",", gz,
              ") exceeds 65535 in y or z");
  FOVEA_CHECK(smem_bytes <= 227 * 1024, "launch of ", kernel, ": ", smem_bytes,
              " bytes of dynamic shared memory exceed 227 KiB");
  count_launch();
}

}  // namespace detail
}  // namespace fovea
