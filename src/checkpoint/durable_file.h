// Making checkpoint files survive a crash: fsync of files and directories, and whole-file writes
// that replace the old contents atomically (temporary sibling, fsync, rename, fsync of the parent).
#pragma once
#include <filesystem>
#include <string>

namespace t6::checkpoint {

void fsync_file(const std::filesystem::path& path);
void fsync_directory(const std::filesystem::path& path);

// After a crash, `path` holds either its old contents or all of `contents`, never a mix.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents);

// Renames and makes the rename durable (fsync of the parent directory).
void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace t6::checkpoint
