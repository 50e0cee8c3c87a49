// The full verification pass over a corpus (`t6_preprocess --verify DIR`): everything the loader's
// cheap start-up checks do, plus every token read back and checksummed against its shard's
// attribute and index.json, ids inside the vocab, document offsets that point at EOT tokens, and
// every other field of index.json against the shards: token dtype, the per-split totals, shard
// names, sources, and no shard file in the directory that the index does not list.
#pragma once
#include <cstdint>
#include <string>

namespace t6 {

struct CorpusVerification {
  int64_t shards = 0;
  uint64_t tokens = 0;
  uint64_t documents = 0;
};

// Throws t6::Error naming the first bad file and what is wrong with it.
CorpusVerification verify_corpus(const std::string& directory);

}  // namespace t6
