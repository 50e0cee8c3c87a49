// At most `capacity` token shard files open at once: a read of a closed shard opens it and closes
// the least recently read one. So a corpus of any number of shards costs a bounded number of file
// descriptors and HDF5 caches (each open shard holds ShardReader::kChunkCacheBytes of chunk cache
// at most, plus HDF5's small per-file metadata cache). Not thread-safe (serial HDF5).
#pragma once
#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

#include "data/shard_reader.h"

namespace t6 {

class OpenShards {
 public:
  static constexpr size_t kDefaultCapacity = 64;
  explicit OpenShards(size_t capacity = kDefaultCapacity);
  OpenShards(const OpenShards&) = delete;
  OpenShards& operator=(const OpenShards&) = delete;

  // The reader of `path`, opened if it is not open (throws as ShardReader does, naming the file).
  // The reference stays valid until the next call.
  const ShardReader& get(const std::string& path);
  size_t open_count() const { return readers_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  std::list<ShardReader> readers_;  // most recently read first
  std::unordered_map<std::string, std::list<ShardReader>::iterator> by_path_;
};

}  // namespace t6
