// A small tmpfs mounted for a test, to fill a real disk: mounted at construction where the process
// may mount (root with CAP_SYS_ADMIN), unmounted when it goes away.
#pragma once
#include <filesystem>
#include <string>

namespace t6::testing {

class SmallTmpfs {
 public:
  // Mounts a tmpfs of `size` (e.g. "512k") on a fresh scratch directory named after `label`.
  SmallTmpfs(const std::string& label, const std::string& size);
  ~SmallTmpfs();
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;

  bool mounted() const { return mounted_; }  // false: skip the test (GTEST_SKIP)
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
};

}  // namespace t6::testing
