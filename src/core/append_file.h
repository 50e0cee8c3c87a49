// A log file written at its end one whole record at a time (metrics.jsonl, TensorBoard events). A
// record that cannot be written whole (a full disk, a quota) is cut off again, so the file always
// ends after a complete record, and the error names the file and the cause in one line.
#pragma once
#include <filesystem>
#include <string_view>

namespace t6 {

class AppendFile {
 public:
  // Opens `path` for appending, creating it if needed; throws t6::Error naming it.
  explicit AppendFile(std::filesystem::path path);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // Appends `record` whole, or throws t6::Error (e.g. "…: no space left on device: the record was not
  // written") and leaves the file as it was before the call.
  void append(std::string_view record);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace t6
