// Memory of this process, for the per-step metrics.
#pragma once
#include <cstdint>

namespace t6 {

// The largest resident set size this process has had (getrusage's ru_maxrss), in bytes.
int64_t peak_host_rss_bytes();

}  // namespace t6
