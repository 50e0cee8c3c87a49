// One split (train or val) of a corpus as a single token stream across its shard files, in index
// order. Opening checks each shard against index.json cheaply (attributes and sizes, not data).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus_index.h"
#include "data/shard_reader.h"

namespace t6 {

class SplitStream {
 public:
  // Throws t6::Error naming the shard on a missing file or any disagreement with the index.
  SplitStream(const std::string& directory, const CorpusIndex& index, const std::string& split);
  uint64_t tokens() const { return shard_starts_.back(); }
  const std::vector<ShardReader>& shards() const { return shards_; }
  // Stream tokens [offset, offset + count), crossing shard boundaries as needed.
  void read(uint64_t offset, uint64_t count, int32_t* out) const;

 private:
  std::vector<ShardReader> shards_;
  std::vector<uint64_t> shard_starts_{0};  // stream offset of each shard's first token, then the total
};

}  // namespace t6
