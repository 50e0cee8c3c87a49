// Files that survive a crash: fsync of files and directories, and whole-file writes that replace the
// old contents atomically (temporary sibling, fsync, rename, fsync of the parent). Used by every
// writer whose output must never be seen half-written: checkpoints, safetensors, corpus indexes,
// the metrics log.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>

namespace t6 {

// Writes all `size` bytes to `fd`, retrying on EINTR. Returns 0, or the errno of the failure (ENOSPC
// for a write that takes nothing); what had been written before a failure stays written.
int write_all_bytes(int fd, const void* data, size_t size);

void fsync_file(const std::filesystem::path& path);
void fsync_directory(const std::filesystem::path& path);

// After a crash, `path` holds either its old contents or all of `contents`, never a mix.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents);

// For a file written in a stream to `temporary`: fsyncs it and renames it durably to `path`.
void commit_file(const std::filesystem::path& temporary, const std::filesystem::path& path);

// Renames and makes the rename durable (fsync of the parent directory).
void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace t6
