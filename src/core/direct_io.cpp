#include "core/direct_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace t6 {

namespace {

bool direct_io_allowed() {
  const char* value = std::getenv("T6_DIRECT_IO");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace

int create_for_direct_write(const std::filesystem::path& path, bool& direct) {
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  direct = false;
  if (!direct_io_allowed()) return ::open(path.c_str(), kFlags, 0644);
  const int fd = ::open(path.c_str(), kFlags | O_DIRECT, 0644);
  direct = fd >= 0;
  if (fd < 0 && errno == EINVAL) return ::open(path.c_str(), kFlags, 0644);
  return fd;
}

int write_at(int fd, const unsigned char* data, size_t size, off_t offset, bool& direct) {
  while (size > 0) {
    const ssize_t written = ::pwrite(fd, data, size, offset);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && errno == EINVAL && direct) {
      if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_DIRECT) != 0) return errno;
      direct = false;
      continue;
    }
    if (written <= 0) return written < 0 ? errno : ENOSPC;
    data += written;
    size -= size_t(written);
    offset += written;
  }
  return 0;
}

}  // namespace t6
