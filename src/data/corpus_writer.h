// The output side of t6_preprocess, shared by text and by imported token files: each document goes
// whole to the train or the val split (a SplitWriter each, shards of at most `shard_tokens` tokens),
// and index.json is written last, atomically (into the staging directory of corpus_staging.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard_writer.h"

namespace t6 {

// How the tokens were made: recorded in every shard and in index.json.
struct CorpusIdentity {
  std::string tokenizer;         // "r50k_base"
  std::string tokenizer_sha256;  // of the tokenizer file
  std::string unicode_version;   // of the pre-tokeniser, or "unknown" for imported tokens
  int64_t vocab_size = 0;
  uint32_t eot_id = 0;
};

// The deterministic split of preprocess.h: with val_documents V the first V documents go to val;
// otherwise document i goes to val when ceil((i+1)·F) > ceil(i·F) for F = val_fraction.
bool document_goes_to_val(uint64_t document, double val_fraction, int64_t val_documents);

class CorpusWriter {
 public:
  CorpusWriter(const std::string& directory, const CorpusIdentity& identity, uint64_t shard_tokens, int gzip_level);

  // Starts a document (its tokens, EOT first, follow through append) in the train or val split.
  void begin_document(const std::string& source_file, bool to_val);
  void append(const uint32_t* ids, size_t count);
  // The open document's next tokens come from `source_file` (recorded in the shard's sources).
  void add_source(const std::string& source_file);

  struct SplitCounts {
    uint64_t documents = 0, tokens = 0;
  };
  const SplitCounts& train() const { return train_counts_; }
  const SplitCounts& val() const { return val_counts_; }

  // Throws naming `inputs` if the train split is empty, or the val split when one was asked for.
  void check_splits(const std::string& inputs, bool val_requested) const;
  // Finishes the shards and writes index.json, listing `sources` as the inputs; returns the shard count.
  uint64_t finish(const std::vector<std::string>& sources);

 private:
  std::string directory_;
  CorpusIdentity identity_;
  SplitWriter train_, val_;
  SplitWriter* current_ = nullptr;
  SplitCounts train_counts_, val_counts_;
  SplitCounts* current_counts_ = nullptr;
};

}  // namespace t6
