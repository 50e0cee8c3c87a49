// Whole-file checksums for checkpoint shards: XXH3-128 (libxxhash), streamed so a file of any size
// is hashed in constant memory. Written into the manifest and checked by resume and `t6_ckpt verify`.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace t6::checkpoint {

struct FileDigest {
  uint64_t bytes = 0;
  std::string xxh3_128;  // 32 lowercase hex digits, XXH128's canonical (big-endian) form
};

// Throws t6::Error naming the file when it cannot be read.
FileDigest digest_file(const std::filesystem::path& path);

}  // namespace t6::checkpoint
