// Whole-file checksums for checkpoint shards: XXH3-128 (libxxhash), streamed so a file of any size
// is hashed in constant memory, either while it is written (StreamingDigest) or by reading it back
// (digest_file). Written into the manifest and checked by resume and `t6_ckpt verify`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace t6::checkpoint {

struct FileDigest {
  uint64_t bytes = 0;
  std::string xxh3_128;  // 32 lowercase hex digits, XXH128's canonical (big-endian) form
};

// The digest of bytes fed in order, as digest_file would compute it for a file of those bytes.
class StreamingDigest {
 public:
  StreamingDigest();
  ~StreamingDigest();
  void update(const void* data, size_t bytes);
  FileDigest finish() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t bytes_ = 0;
};

// Throws t6::Error naming the file when it cannot be read.
FileDigest digest_file(const std::filesystem::path& path);

// Digests already taken (by several ranks, each reading a share of the files), by path
// (lexically normal): a check looks a file up here before reading it.
using KnownDigests = std::map<std::filesystem::path, FileDigest>;

}  // namespace t6::checkpoint
