#include "core/hdf5_image.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/durable_file.h"
#include "core/error.h"
#include "core/hdf5_util.h"

namespace t6 {

hid_t create_hdf5_in_memory(const std::filesystem::path& path, size_t increment_bytes, hid_t creation_properties,
                            const std::string& what) {
  Hdf5QuietErrors quiet;
  Hdf5Handle access(hdf5_check(H5Pcreate(H5P_FILE_ACCESS), path.string(), "create file access properties"));
  hdf5_check(H5Pset_fapl_core(access.get(), increment_bytes, false), path.string(), "select the in-memory driver");
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation_properties, access.get());
  T6_CHECK(file >= 0, "cannot create ", what, " ", path.string(), " in memory: ", hdf5_error_text());
  return file;
}

// HDF5 keeps the superblock of a file open for writing marked as such (superblock versions 0 and
// 1: the 4-byte consistency flags at byte 20, see the HDF5 file format spec); the image goes out
// with them cleared, as H5Fclose and H5Fget_file_image leave them.
void write_hdf5_image(hid_t file, const std::filesystem::path& path, const std::string& what,
                      const std::function<void(const unsigned char*, size_t)>& on_block, bool fail_as_disk_full) {
  const unsigned char* image = nullptr;
  size_t bytes = 0;
  {
    Hdf5QuietErrors quiet;
    T6_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, "cannot build ", what, " ", path.string(), " in memory: ",
             hdf5_error_text());
    const ssize_t image_bytes = H5Fget_file_image(file, nullptr, 0);
    Hdf5Handle access(H5Fget_access_plist(file));
    void* handle = nullptr;
    T6_ASSERT(image_bytes > 0 && H5Fget_vfd_handle(file, access.get(), &handle) >= 0 && handle);
    // The core driver's handle is the address of its memory buffer.
    image = *static_cast<const unsigned char* const*>(handle);
    bytes = size_t(image_bytes);
  }
  T6_ASSERT(bytes >= 24 && std::memcmp(image, "\x89HDF\r\n\x1a\n", 8) == 0 && image[8] <= 1);
  unsigned char superblock_start[24];
  std::memcpy(superblock_start, image, sizeof superblock_start);
  std::memset(superblock_start + 20, 0, 4);

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  T6_CHECK(fd >= 0, "cannot create ", what, " ", path.string(), ": ", std::strerror(errno));
  auto give_up = [&](int error_number, const char* step) {
    ::close(fd);
    ::unlink(path.c_str());
    fail(str("cannot write ", what, " ", path.string(), ": ", step, std::strerror(error_number)));
  };
  auto write_all = [&](const unsigned char* data, size_t size) {
    if (on_block) on_block(data, size);
    const int error = fail_as_disk_full ? ENOSPC : write_all_bytes(fd, data, size);
    if (error != 0) give_up(error, "");
  };
  write_all(superblock_start, sizeof superblock_start);
  constexpr size_t kBlockBytes = size_t(8) << 20;
  for (size_t offset = sizeof superblock_start; offset < bytes; offset += kBlockBytes)
    write_all(image + offset, std::min(kBlockBytes, bytes - offset));
  if (::fsync(fd) != 0) give_up(errno, "fsync failed: ");
  ::close(fd);
}

}  // namespace t6
