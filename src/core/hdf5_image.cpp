#include "core/hdf5_image.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/direct_io.h"
#include "core/error.h"
#include "core/hdf5_util.h"

namespace t6 {

namespace {

// Large enough that one write keeps the disk's queue full, small enough that the checksum thread
// starts early and the last block is short.
constexpr size_t kBlockBytes = size_t(16) << 20;

uint64_t align_down(uint64_t value) { return value - value % kDirectWriteAlignment; }
uint64_t align_up(uint64_t value) { return align_down(value + kDirectWriteAlignment - 1); }

// Joins a thread however the scope ends.
struct JoinOnExit {
  std::thread& thread;
  ~JoinOnExit() {
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

// The image lives in one anonymous mapping that asks for transparent huge pages: HDF5 grows the
// image an increment at a time and zero-fills each increment, which on 4 KiB pages took a page
// fault every 4 KiB. The mapping grows with mremap, never copied, and is page-aligned, as direct
// writes need. These run inside HDF5: they report failure by returning null, never by throwing.
void* Hdf5Image::allocate_image(size_t size, H5FD_file_image_op_t, void* self_pointer) {
  auto& self = *static_cast<Hdf5Image*>(self_pointer);
  if (self.image_ != nullptr) return nullptr;  // one image per file
  size = std::max(size, kDirectWriteAlignment);
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return nullptr;
  ::madvise(mapping, size, MADV_HUGEPAGE);  // advice: without huge pages the image works the same
  std::lock_guard lock(self.memory_mutex_);
  self.image_ = static_cast<unsigned char*>(mapping);
  self.image_capacity_ = size;
  return mapping;
}

void* Hdf5Image::resize_image(void* image, size_t size, H5FD_file_image_op_t op, void* self_pointer) {
  auto& self = *static_cast<Hdf5Image*>(self_pointer);
  if (image == nullptr) return allocate_image(size, op, self_pointer);
  if (image != self.image_) return nullptr;
  size = std::max(size, kDirectWriteAlignment);
  std::lock_guard lock(self.memory_mutex_);
  void* moved = ::mremap(self.image_, self.image_capacity_, size, MREMAP_MAYMOVE);
  if (moved == MAP_FAILED) return nullptr;
  ::madvise(moved, size, MADV_HUGEPAGE);
  self.image_ = static_cast<unsigned char*>(moved);
  self.image_capacity_ = size;
  return moved;
}

herr_t Hdf5Image::free_image(void* image, H5FD_file_image_op_t, void* self_pointer) {
  auto& self = *static_cast<Hdf5Image*>(self_pointer);
  if (image == nullptr || image != self.image_) return image == nullptr ? 0 : -1;
  std::lock_guard lock(self.memory_mutex_);
  ::munmap(self.image_, self.image_capacity_);
  self.image_ = nullptr;
  self.image_capacity_ = 0;
  return 0;
}

void* Hdf5Image::copy_into_image(void* destination, const void* source, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(destination, source, size);
}

Hdf5Image::Hdf5Image(std::filesystem::path path, size_t increment_bytes, hid_t creation_properties, std::string what,
                     bool fail_as_disk_full)
    : path_(std::move(path)), what_(std::move(what)), fail_as_disk_full_(fail_as_disk_full) {
  fd_ = create_for_direct_write(path_, direct_);
  T6_CHECK(fd_ >= 0, "cannot create ", what_, " ", path_.string(), ": ", std::strerror(errno));
  Hdf5QuietErrors quiet;
  try {
    Hdf5Handle access(hdf5_check(H5Pcreate(H5P_FILE_ACCESS), path_.string(), "create file access properties"));
    hdf5_check(H5Pset_fapl_core(access.get(), increment_bytes, false), path_.string(), "select the in-memory driver");
    H5FD_file_image_callbacks_t memory = {allocate_image, copy_into_image, resize_image, free_image,
                                          same_owner,     keep_owner,      this};
    hdf5_check(H5Pset_file_image_callbacks(access.get(), &memory), path_.string(), "set the image's allocator");
    file_ = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, creation_properties, access.get());
    T6_CHECK(file_ >= 0, "cannot create ", what_, " ", path_.string(), " in memory: ", hdf5_error_text());
  } catch (...) {
    ::close(fd_);
    ::unlink(path_.c_str());
    throw;
  }
}

Hdf5Image::~Hdf5Image() {
  stop_background_writes();
  Hdf5QuietErrors quiet;
  if (file_ >= 0) H5Fclose(file_);
  if (fd_ >= 0) ::close(fd_);
  if (!written_) ::unlink(path_.c_str());
}

void Hdf5Image::write_final_bytes(uint64_t address, uint64_t size) {
  // Whole aligned blocks inside the range only; the blocks it shares with other bytes go with them.
  const Range range{align_up(address), align_down(address + size)};
  if (range.end <= range.begin) return;
  std::lock_guard lock(queue_mutex_);
  queue_.push_back(range);
  if (!writer_.joinable()) writer_ = std::thread([this] { write_in_background(); });
  queue_changed_.notify_one();
}

void Hdf5Image::write_in_background() {
  std::unique_lock queue_lock(queue_mutex_);
  for (;;) {
    queue_changed_.wait(queue_lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    const Range range = queue_.front();
    queue_.pop_front();
    if (background_error_ != 0) continue;  // the save has failed: write() reports it
    queue_lock.unlock();
    int error = 0;
    {
      std::lock_guard memory_lock(memory_mutex_);
      error = write_bytes(image_ + range.begin, range.end - range.begin, range.begin);
    }
    queue_lock.lock();
    if (error != 0) background_error_ = error;
    else written_ranges_.push_back(range);
  }
}

void Hdf5Image::stop_background_writes() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_one();
  if (writer_.joinable()) writer_.join();
}

int Hdf5Image::write_bytes(const unsigned char* data, size_t size, uint64_t offset) {
  return fail_as_disk_full_ ? ENOSPC : write_at(fd_, data, size, off_t(offset), direct_);
}

void Hdf5Image::give_up(int error_number, const char* step) {
  ::close(fd_);
  fd_ = -1;
  ::unlink(path_.c_str());
  fail(str("cannot write ", what_, " ", path_.string(), ": ", step, std::strerror(error_number)));
}

// Writes every byte of [0, bytes) that no background write covered, in aligned blocks; the last
// block of a direct write goes out zero-padded and the file is then cut to its length.
void Hdf5Image::write_gaps(const unsigned char* image, size_t bytes) {
  auto write_span = [&](uint64_t begin, uint64_t end) {
    for (uint64_t at = begin; at < end; at += kBlockBytes) {
      const uint64_t size = std::min<uint64_t>(kBlockBytes, end - at);
      if (const int error = write_bytes(image + at, size, at); error != 0) give_up(error, "");
    }
  };
  std::sort(written_ranges_.begin(), written_ranges_.end(), [](Range a, Range b) { return a.begin < b.begin; });
  const uint64_t body_end = direct_ ? align_down(bytes) : bytes;
  uint64_t cursor = 0;
  for (const Range& range : written_ranges_) {
    T6_ASSERT(range.begin >= cursor && range.end <= body_end);
    write_span(cursor, range.begin);
    cursor = range.end;
  }
  write_span(cursor, body_end);
  if (body_end == bytes) return;
  alignas(kDirectWriteAlignment) unsigned char last_block[kDirectWriteAlignment] = {};
  std::memcpy(last_block, image + body_end, bytes - body_end);
  if (const int error = write_bytes(last_block, sizeof last_block, body_end); error != 0) give_up(error, "");
  if (::ftruncate(fd_, off_t(bytes)) != 0) give_up(errno, "cannot set its length: ");
}

// HDF5 keeps the superblock of a file open for writing marked as such (superblock versions 0 and
// 1: the 4-byte consistency flags at byte 20, see the HDF5 file format spec); the file goes out
// with them cleared, as H5Fclose leaves them, and the image gets them back after.
void Hdf5Image::write(const std::function<void(const unsigned char*, size_t)>& on_block) {
  T6_CHECK(!written_ && fd_ >= 0, path_.string(), ": written twice");
  stop_background_writes();
  if (background_error_ != 0) give_up(background_error_, "");
  size_t bytes = 0;
  {
    Hdf5QuietErrors quiet;
    T6_CHECK(H5Fflush(file_, H5F_SCOPE_GLOBAL) >= 0, "cannot build ", what_, " ", path_.string(), " in memory: ",
             hdf5_error_text());
    const ssize_t image_bytes = H5Fget_file_image(file_, nullptr, 0);
    T6_ASSERT(image_bytes > 0 && size_t(image_bytes) <= image_capacity_);
    bytes = size_t(image_bytes);
  }
  unsigned char* image = image_;
  T6_ASSERT(bytes >= 24 && std::memcmp(image, "\x89HDF\r\n\x1a\n", 8) == 0 && image[8] <= 1);
  unsigned char open_flags[4];
  std::memcpy(open_flags, image + 20, 4);
  std::memset(image + 20, 0, 4);
  struct RestoreFlags {
    unsigned char* at;
    const unsigned char* flags;
    ~RestoreFlags() { std::memcpy(at, flags, 4); }
  } restore{image + 20, open_flags};

  std::thread checksum;
  JoinOnExit join{checksum};
  auto checksum_all = [=] {
    for (size_t offset = 0; offset < bytes; offset += kBlockBytes) on_block(image + offset, std::min(kBlockBytes, bytes - offset));
  };
  if (on_block && bytes > kBlockBytes) checksum = std::thread(checksum_all);
  else if (on_block) checksum_all();

  write_gaps(image, bytes);
  if (::fsync(fd_) != 0) give_up(errno, "fsync failed: ");
  ::close(fd_);
  fd_ = -1;
  written_ = true;
}

}  // namespace t6
