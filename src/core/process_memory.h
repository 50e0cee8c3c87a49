// Memory of this process and of the machine, for the per-step metrics and allocation checks.
#pragma once
#include <cstdint>

namespace t6 {

// The largest resident set size this process has had (getrusage's ru_maxrss), in bytes.
int64_t peak_host_rss_bytes();
// The machine's physical memory (sysconf), in bytes.
int64_t physical_memory_bytes();

}  // namespace t6
