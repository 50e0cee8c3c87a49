#include "checkpoint/save_faults.h"

#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace t6::checkpoint {

const std::vector<std::string>& save_crash_points() {
  static const std::vector<std::string> points = {"begin",   "shard_written", "manifest_written", "indexes_removed",
                                                  "old_set_aside", "renamed", "latest_written", "pruning"};
  return points;
}

void save_crash_point(const char* point) {
  const char* wanted = std::getenv("T6_CKPT_CRASH_AT");
  if (!wanted || std::strcmp(wanted, point) != 0) return;
  T6_ASSERT(std::find(save_crash_points().begin(), save_crash_points().end(), point) != save_crash_points().end());
  ::_exit(86);
}

bool disk_full_injected() {
  const char* value = std::getenv("T6_CKPT_DISK_FULL");
  return value && *value && std::strcmp(value, "0") != 0;
}

}  // namespace t6::checkpoint
