// Training and validation batches from a token corpus (index.json + HDF5 shards).
//
// The train split is one token stream across its shards; sequence j of the global batch of step s
// is the window of seq_len + 1 tokens starting at a position drawn uniformly from that stream by a
// counter-based RNG keyed by (seed, s, j). So a batch depends on (seed, step) only: DP rank r reads
// its slice [first, first + count) of it, the union over ranks is the same for any DP size, and
// resuming at step s needs no state but s. Windows may cross document and shard boundaries.
// Validation reads the val split as consecutive non-overlapping windows, always the same ones.
// At most `max_open_shards` shards of both splits are open at once (OpenShards, least recently read
// closed first), so memory and file descriptors stay bounded whatever the shard count; reads are
// hyperslabs (never a whole shard). Not thread-safe (serial HDF5): BatchPrefetcher reads ahead in
// a thread of its own, and the trainer never reads validation windows while it does.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "data/open_shards.h"

namespace t6 {

class TokenLoader {
 public:
  // Opens the corpus directory (index.json + shards), checks index/attributes/sizes cheaply.
  // Throws t6::Error naming the file on any mismatch (tokenizer, vocab size, token count, checksum
  // recorded in the index vs the shard's attributes, missing shard).
  TokenLoader(const std::string& corpus_dir, int64_t seq_len, uint64_t seed,
              int64_t max_open_shards = int64_t(OpenShards::kDefaultCapacity));
  ~TokenLoader();
  TokenLoader(TokenLoader&&) noexcept;
  TokenLoader& operator=(TokenLoader&&) noexcept;

  int64_t vocab_size() const;  // the tokenizer's vocab (50257 for r50k_base)
  int64_t train_tokens() const;
  int64_t val_tokens() const;
  // Sequences [first, first + count) of the global training batch of `step` (a pure function of
  // (seed, step, sequence index)). Writes count*seq_len inputs and the shifted targets, as int32.
  void read_train(int64_t step, int64_t first_sequence, int64_t count, int32_t* inputs, int32_t* targets);
  int64_t val_windows() const;
  size_t open_shards() const;  // shard files open now (at most max_open_shards)  // number of non-overlapping seq_len+1 windows in the val split
  void read_val(int64_t first_window, int64_t count, int32_t* inputs, int32_t* targets);

  // Where sequence `sequence` of step `step` starts in the train stream (exposed for tests/tools).
  int64_t train_window_start(int64_t step, int64_t sequence) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace t6
