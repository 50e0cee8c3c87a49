// index.json of a token corpus directory: which shards exist, their split, token and document
// counts and checksums, and the tokenizer. Written last and atomically by the preprocessor, so a
// directory with an index is a complete corpus.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/shard_writer.h"

namespace t6 {

inline constexpr const char* kCorpusIndexFile = "index.json";

struct CorpusIndex {
  int64_t format_version = 0;
  std::string tokenizer;
  std::string tokenizer_sha256;
  std::string unicode_version;  // of the pre-tokeniser's classes: every shard was split by the same
  int64_t vocab_size = 0;
  int64_t eot_id = 0;
  std::string token_dtype;  // "uint16" or "uint32"
  std::vector<ShardSummary> shards;  // train shards in order, then val shards in order
  std::vector<std::string> sources;  // input files, in the order their documents were read

  // index.json's "splits" summary as read (write_corpus_index computes it from `shards`); the full
  // verification checks it against the shards.
  struct SplitTotals {
    uint64_t tokens = 0, documents = 0, shards = 0;
  };
  std::map<std::string, SplitTotals> recorded_splits;

  uint64_t split_tokens(const std::string& split) const;
  uint64_t split_documents(const std::string& split) const;
  std::vector<ShardSummary> split_shards(const std::string& split) const;
};

// Reads DIR/index.json; throws t6::Error naming it if it is missing or malformed.
CorpusIndex read_corpus_index(const std::string& directory);
// Writes DIR/index.json via a temporary file, fsync and rename, so readers see all of it or none.
void write_corpus_index(const std::string& directory, const CorpusIndex& index);

}  // namespace t6
