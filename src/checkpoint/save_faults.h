// Test hooks of the checkpoint save protocol, read from the environment at each use (unset in real
// runs, where they cost one getenv per save step):
//   T6_CKPT_CRASH_AT=<point>  the process _exit()s (status 86) on reaching that point of a save, as a
//                             crash there would stop it; the points are save_crash_points()
//   T6_CKPT_DISK_FULL=1       every checkpoint file written fails as on a full disk (ENOSPC)
#pragma once
#include <string>
#include <vector>

namespace t6::checkpoint {

// In protocol order: staging created; a shard file written; manifest written; shard indexes removed;
// an older save of the same step set aside; staging renamed to step_N; `latest` written; mid-prune.
const std::vector<std::string>& save_crash_points();

void save_crash_point(const char* point);  // _exit(86) when T6_CKPT_CRASH_AT names `point`
bool disk_full_injected();                 // T6_CKPT_DISK_FULL is set and not "0"

}  // namespace t6::checkpoint
