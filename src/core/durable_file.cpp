#include "core/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace t6 {

namespace {

void fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  T6_CHECK(fd >= 0, "cannot open ", path.string(), " to fsync it: ", std::strerror(errno));
  int result = ::fsync(fd);
  int saved_errno = errno;
  ::close(fd);
  T6_CHECK(result == 0, "fsync of ", path.string(), " failed: ", std::strerror(saved_errno));
}

}  // namespace

int write_all_bytes(int fd, const void* data, size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return written < 0 ? errno : ENOSPC;
    bytes += written;
    size -= size_t(written);
  }
  return 0;
}

void fsync_file(const std::filesystem::path& path) { fsync_path(path, O_RDONLY); }
void fsync_directory(const std::filesystem::path& path) { fsync_path(path, O_RDONLY | O_DIRECTORY); }

void write_file_atomically(const std::filesystem::path& path, const std::string& contents) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  T6_CHECK(fd >= 0, "cannot create ", temporary.string(), ": ", std::strerror(errno));
  // A failed write leaves `path` as it was and no temporary beside it (a full disk stays full of it).
  auto discard = [&](const std::string& message) {
    ::unlink(temporary.c_str());
    fail(message);
  };
  if (const int error = write_all_bytes(fd, contents.data(), contents.size()); error != 0) {
    ::close(fd);
    discard(str("cannot write ", temporary.string(), ": ", std::strerror(error)));
  }
  int result = ::fsync(fd);
  int saved_errno = errno;
  ::close(fd);
  if (result != 0) discard(str("fsync of ", temporary.string(), " failed: ", std::strerror(saved_errno)));
  try {
    rename_durably(temporary, path);
  } catch (const Error& error) {
    discard(error.what());  // once renamed, nothing is left to remove
  }
}

void commit_file(const std::filesystem::path& temporary, const std::filesystem::path& path) {
  fsync_file(temporary);
  rename_durably(temporary, path);
}

void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to) {
  T6_CHECK(::rename(from.c_str(), to.c_str()) == 0, "cannot rename ", from.string(), " to ", to.string(), ": ",
           std::strerror(errno));
  std::filesystem::path parent = to.parent_path();
  fsync_directory(parent.empty() ? "." : parent);
}

}  // namespace t6
