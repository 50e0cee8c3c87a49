#include "core/process_memory.h"

#include <sys/resource.h>

namespace t6 {

int64_t peak_host_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace t6
