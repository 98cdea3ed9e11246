#include "cpu_reference/threading.h"

#include <omp.h>

#include "cpu_reference/common.h"

namespace fovea::ref {

void set_num_threads(int n) {
  FOVEA_CHECK(n >= 1, "set_num_threads: argument 'n' must be >= 1, got ", n);
  detail::blas_init();
  omp_set_num_threads(n);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace fovea::ref
