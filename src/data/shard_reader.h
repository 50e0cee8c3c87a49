// Reads one token shard with serial HDF5: its attributes, and any range of its tokens by hyperslab
// (never the whole dataset). Every read is checked by HDF5's Fletcher32 filter; failures name the file.
// Not thread-safe (neither is serial HDF5): one reader per thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/hdf5_util.h"
#include "data/shard_format.h"

namespace t6 {

class ShardReader {
 public:
  // HDF5 chunk cache of the tokens dataset: 32 chunks of uint16 tokens, so neighbouring windows do
  // not re-read (and re-verify) a chunk, while many open shards stay cheap (OpenShards bounds them).
  static constexpr size_t kChunkCacheBytes = size_t(1) << 20;

  explicit ShardReader(const std::string& path);
  const std::string& path() const { return path_; }
  const shard_format::ShardAttributes& attributes() const { return attributes_; }
  uint64_t length() const { return length_; }  // elements in the tokens dataset
  int token_bytes() const { return token_bytes_; }

  // tokens[offset, offset + count) converted to int32.
  void read_tokens(uint64_t offset, uint64_t count, int32_t* out) const;
  // The same range as stored (little-endian uint16 or uint32), for checksums.
  void read_stored_tokens(uint64_t offset, uint64_t count, void* out) const;
  std::vector<uint64_t> read_doc_offsets() const;

 private:
  void read_range(uint64_t offset, uint64_t count, hid_t memory_type, void* out) const;
  std::string path_;
  Hdf5Handle file_, tokens_;
  shard_format::ShardAttributes attributes_;
  uint64_t length_ = 0;
  int token_bytes_ = 0;
};

}  // namespace t6
