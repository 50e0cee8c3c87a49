// HDF5 files built in memory and written out by t6 itself: HDF5's core driver (no backing store)
// holds the whole file, and write_hdf5_image writes its bytes in one pass and fsyncs them. A full
// disk then shows up as one failed write() with its errno, never inside HDF5 (whose sec2 driver,
// once a write has failed, prints pages of diagnostics and can crash at exit closing the file).
// Used by checkpoint shards and token shards.
#pragma once
#include <hdf5.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace t6 {

// A new, empty HDF5 file in memory, named `path` (where write_hdf5_image will put it), grown
// `increment_bytes` at a time. Returns a file id to close with H5Fclose; throws naming `what` and
// `path` on failure.
hid_t create_hdf5_in_memory(const std::filesystem::path& path, size_t increment_bytes, hid_t creation_properties,
                            const std::string& what);

// Flushes `file` (from create_hdf5_in_memory) and writes its image to `path`, fsynced; each block of
// bytes written is passed to `on_block` first, when given. With `fail_as_disk_full` every write
// fails with ENOSPC (a test hook). Throws "cannot write <what> <path>: <strerror>", having removed
// the partial file. Leaves `file` open.
void write_hdf5_image(hid_t file, const std::filesystem::path& path, const std::string& what,
                      const std::function<void(const unsigned char*, size_t)>& on_block, bool fail_as_disk_full);

}  // namespace t6
