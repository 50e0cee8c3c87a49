// HDF5 files built in memory and written out by t6 itself, used by checkpoint shards and token
// shards. HDF5's core driver (no backing store) holds the whole file, so a full disk shows up as one
// failed write() with its errno, never inside HDF5 (whose sec2 driver, once a write has failed,
// prints pages of diagnostics and can crash at exit closing the file).
//
// The file goes to the disk at the disk's speed (core/direct_io.h). Bytes the writer knows to be
// final, such as chunks handed to H5Dwrite_chunk, can go out in the background while the rest of
// the file is still being built; write() then writes what is left, checksumming the whole file on
// a second thread as it goes, and fsyncs it.
#pragma once
#include <hdf5.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace t6 {

class Hdf5Image {
 public:
  // A new, empty HDF5 file in memory, to be written to `path` (created now, empty), grown
  // `increment_bytes` at a time. `what` names it in errors. With `fail_as_disk_full` every write
  // fails with ENOSPC (a test hook). Throws naming `what` and `path` on failure.
  Hdf5Image(std::filesystem::path path, size_t increment_bytes, hid_t creation_properties, std::string what,
            bool fail_as_disk_full);
  // Closes the HDF5 file; an image that was not written leaves nothing at `path`.
  ~Hdf5Image();
  Hdf5Image(const Hdf5Image&) = delete;
  Hdf5Image& operator=(const Hdf5Image&) = delete;

  hid_t file() const { return file_; }

  // Bytes [address, address + size) of the file are final: HDF5 will not write them again (a chunk
  // written with H5Dwrite_chunk). They are written to `path` in the background.
  void write_final_bytes(uint64_t address, uint64_t size);

  // Flushes the file and writes every byte not yet written to `path`, fsynced. `on_block`, when
  // given, sees all the file's bytes, in order, in blocks, on another thread, and has seen them all
  // when this returns. Throws "cannot write <what> <path>: <strerror>", having removed the file.
  // The HDF5 file stays open, to be closed by the destructor.
  void write(const std::function<void(const unsigned char*, size_t)>& on_block);

 private:
  struct Range {
    uint64_t begin = 0, end = 0;
  };
  // The HDF5 core driver allocates the image through these (file image callbacks, udata = this).
  static void* allocate_image(size_t size, H5FD_file_image_op_t op, void* self);
  static void* resize_image(void* image, size_t size, H5FD_file_image_op_t op, void* self);
  static herr_t free_image(void* image, H5FD_file_image_op_t op, void* self);
  static void* copy_into_image(void* destination, const void* source, size_t size, H5FD_file_image_op_t op, void* self);
  static void* same_owner(void* self) { return self; }
  static herr_t keep_owner(void*) { return 0; }

  void write_in_background();
  void stop_background_writes();
  int write_bytes(const unsigned char* data, size_t size, uint64_t offset);  // 0 or the errno
  void write_gaps(const unsigned char* image, size_t bytes);
  [[noreturn]] void give_up(int error_number, const char* step);

  std::filesystem::path path_;
  std::string what_;
  bool fail_as_disk_full_;
  int fd_ = -1;
  bool direct_ = false;
  hid_t file_ = H5I_INVALID_HID;
  bool written_ = false;

  // The image: one anonymous mapping. `memory_mutex_` is held while a background write reads it and
  // while HDF5 moves it (mremap on growth), so a write never reads memory that has moved.
  std::mutex memory_mutex_;
  unsigned char* image_ = nullptr;
  size_t image_capacity_ = 0;

  // Background writes.
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<Range> queue_;
  bool stopping_ = false;
  int background_error_ = 0;    // errno of the first failed background write
  std::vector<Range> written_ranges_;  // by the background thread
  std::thread writer_;
};

}  // namespace t6
