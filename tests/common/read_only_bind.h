// A directory made read-only for a while, as a remounted or full-quota filesystem would be, even for
// root (who writes through any file mode): a read-only bind mount of the directory on itself, where
// the process may mount (root with CAP_SYS_ADMIN); unmounted by release() or when it goes away.
#pragma once
#include <filesystem>

namespace t6::testing {

class ReadOnlyBind {
 public:
  explicit ReadOnlyBind(const std::filesystem::path& dir);
  ~ReadOnlyBind() { release(); }
  ReadOnlyBind(const ReadOnlyBind&) = delete;
  ReadOnlyBind& operator=(const ReadOnlyBind&) = delete;

  bool mounted() const { return mounted_; }  // false: this process may not mount (skip the case)
  void release();

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace t6::testing
