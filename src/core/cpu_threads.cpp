#include "core/cpu_threads.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cblas.h>
#include <cstdio>
#include <thread>

#include "core/error.h"

namespace t6 {

int64_t available_cores() {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) return std::max(1, CPU_COUNT(&mask));
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

double load_average() {
  double load = 0;
  if (std::FILE* file = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(file, "%lf", &load) != 1) load = 0;
    std::fclose(file);
  }
  return load;
}

int64_t max_cpu_threads() { return 8 * available_cores(); }

void check_cpu_threads(int64_t threads, const std::string& what) {
  T6_CHECK(threads >= 1 && threads <= max_cpu_threads(), what, " must be in [1, ", max_cpu_threads(),
           "] (8 per core; this machine has ", available_cores(), " cores), got ", threads);
}

void use_cpu_threads(int64_t threads, const std::string& what) {
  check_cpu_threads(threads, what);
  omp_set_num_threads(int(threads));
  openblas_set_num_threads(int(threads));
}

}  // namespace t6
