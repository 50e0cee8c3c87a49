#include "core/append_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/durable_file.h"
#include "core/error.h"

namespace t6 {

AppendFile::AppendFile(std::filesystem::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  T6_CHECK(fd_ >= 0, path_.string(), ": cannot open for appending (", std::strerror(errno), ")");
}

AppendFile::~AppendFile() { ::close(fd_); }

void AppendFile::append(std::string_view record) {
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  T6_CHECK(end >= 0, path_.string(), ": cannot find the end of the file (", std::strerror(errno), ")");
  if (const int error = write_all_bytes(fd_, record.data(), record.size()); error != 0) {
    // The part that fitted would be a torn record; what the file held stays whole.
    const bool restored = ::ftruncate(fd_, end) == 0;
    fail(str(path_.string(), ": ", std::strerror(error), ": a record of ", record.size(), " bytes was not written",
             restored ? "" : " (and its first bytes could not be removed again)"));
  }
}

}  // namespace t6
