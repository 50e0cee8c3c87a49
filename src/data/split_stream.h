// One split (train or val) of a corpus as a single token stream across its shard files, in index
// order. Opening checks each shard against index.json cheaply (attributes and sizes, not data).
// Shards are opened through an OpenShards pool, so only a bounded number of them is open at once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus_index.h"
#include "data/open_shards.h"

namespace t6 {

class SplitStream {
 public:
  // Throws t6::Error naming the shard on a missing file or any disagreement with the index.
  // `shards` must outlive the stream; it may be shared with other streams.
  SplitStream(const std::string& directory, const CorpusIndex& index, const std::string& split, OpenShards& shards);
  uint64_t tokens() const { return shard_starts_.back(); }
  size_t shard_count() const { return paths_.size(); }
  // Shard i's reader, valid until the next read through the pool.
  const ShardReader& shard(size_t i) const { return shards_->get(paths_[i]); }
  // Stream tokens [offset, offset + count), crossing shard boundaries as needed.
  void read(uint64_t offset, uint64_t count, int32_t* out) const;

 private:
  OpenShards* shards_;
  std::vector<std::string> paths_;
  std::vector<uint64_t> shard_starts_{0};  // stream offset of each shard's first token, then the total
};

}  // namespace t6
