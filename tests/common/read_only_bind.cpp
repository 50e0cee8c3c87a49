#include "common/read_only_bind.h"

#include <sys/mount.h>

namespace t6::testing {

ReadOnlyBind::ReadOnlyBind(const std::filesystem::path& dir) : dir_(dir) {
  if (::mount(dir_.c_str(), dir_.c_str(), nullptr, MS_BIND, nullptr) != 0) return;
  mounted_ = true;
  // A bind mount takes the read-only flag only on a remount.
  if (::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) release();
}

void ReadOnlyBind::release() {
  if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  mounted_ = false;
}

}  // namespace t6::testing
