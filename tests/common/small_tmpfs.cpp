#include "common/small_tmpfs.h"

#include <sys/mount.h>

#include "common/test_paths.h"

namespace t6::testing {

SmallTmpfs::SmallTmpfs(const std::string& label, const std::string& size) : path_(scratch_dir(label)) {
  const std::string options = "size=" + size;
  mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
}

SmallTmpfs::~SmallTmpfs() {
  if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
}

}  // namespace t6::testing
