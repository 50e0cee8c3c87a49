#include "data/token_loader.h"

#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/split_stream.h"

namespace t6 {

struct TokenLoader::State {
  std::string directory;
  int64_t seq_len;
  CorpusIndex index;
  OpenShards open_shards;  // shared by both splits, declared before them
  SplitStream train, val;
  // Two independent 32-bit streams make one 64-bit draw, so starts stay uniform past 2^32 tokens.
  CounterRng window_rng_high, window_rng_low;
  std::vector<int32_t> window;  // seq_len + 1 tokens

  State(const std::string& corpus_dir, int64_t seq_len_, uint64_t seed, int64_t max_open_shards)
      : directory(corpus_dir), seq_len(seq_len_), index(read_corpus_index(corpus_dir)),
        open_shards(size_t(max_open_shards)), train(corpus_dir, index, "train", open_shards),
        val(corpus_dir, index, "val", open_shards),
        window_rng_high(seed, "t6.token_loader.train_window.high"),
        window_rng_low(seed, "t6.token_loader.train_window.low"), window(size_t(seq_len_) + 1) {}

  void split_window(int32_t* inputs, int32_t* targets) const {
    std::copy(window.begin(), window.end() - 1, inputs);
    std::copy(window.begin() + 1, window.end(), targets);
  }
};

TokenLoader::TokenLoader(const std::string& corpus_dir, int64_t seq_len, uint64_t seed, int64_t max_open_shards) {
  T6_CHECK(seq_len > 0, "TokenLoader: seq_len must be positive, got ", seq_len);
  T6_CHECK(max_open_shards >= 1, "TokenLoader: max_open_shards must be at least 1, got ", max_open_shards);
  state_ = std::make_unique<State>(corpus_dir, seq_len, seed, max_open_shards);
  T6_CHECK(state_->train.tokens() >= uint64_t(seq_len) + 1, corpus_dir, ": the train split holds ",
           state_->train.tokens(), " tokens, fewer than one window of seq_len + 1 = ", seq_len + 1);
}

TokenLoader::~TokenLoader() = default;
TokenLoader::TokenLoader(TokenLoader&&) noexcept = default;
TokenLoader& TokenLoader::operator=(TokenLoader&&) noexcept = default;

int64_t TokenLoader::vocab_size() const { return state_->index.vocab_size; }
int64_t TokenLoader::train_tokens() const { return int64_t(state_->train.tokens()); }
int64_t TokenLoader::val_tokens() const { return int64_t(state_->val.tokens()); }
int64_t TokenLoader::val_windows() const { return val_tokens() / (state_->seq_len + 1); }
size_t TokenLoader::open_shards() const { return state_->open_shards.open_count(); }

int64_t TokenLoader::train_window_start(int64_t step, int64_t sequence) const {
  T6_CHECK(step >= 0 && step < (int64_t(1) << 32) && sequence >= 0 && sequence < (int64_t(1) << 32),
           "TokenLoader: step ", step, " or sequence ", sequence, " outside [0, 2^32)");
  const uint64_t counter = uint64_t(step) << 32 | uint64_t(sequence);
  const uint64_t draw = uint64_t(state_->window_rng_high.bits(counter)) << 32 | state_->window_rng_low.bits(counter);
  // Modulo bias is below 2^-24 for any corpus under 2^40 tokens.
  const uint64_t window_starts = state_->train.tokens() - uint64_t(state_->seq_len);
  return int64_t(draw % window_starts);
}

void TokenLoader::read_train(int64_t step, int64_t first_sequence, int64_t count, int32_t* inputs, int32_t* targets) {
  T6_CHECK(first_sequence >= 0 && count >= 0, "TokenLoader::read_train: bad sequence range [", first_sequence, ", ",
           first_sequence + count, ")");
  const int64_t seq_len = state_->seq_len;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t start = train_window_start(step, first_sequence + i);
    state_->train.read(uint64_t(start), uint64_t(seq_len) + 1, state_->window.data());
    state_->split_window(inputs + i * seq_len, targets + i * seq_len);
  }
}

void TokenLoader::read_val(int64_t first_window, int64_t count, int32_t* inputs, int32_t* targets) {
  T6_CHECK(first_window >= 0 && count >= 0 && first_window + count <= val_windows(), state_->directory,
           ": validation windows [", first_window, ", ", first_window + count, ") asked, the val split has ",
           val_windows(), " of seq_len + 1 = ", state_->seq_len + 1, " tokens");
  const int64_t seq_len = state_->seq_len;
  for (int64_t i = 0; i < count; ++i) {
    state_->val.read(uint64_t((first_window + i) * (seq_len + 1)), uint64_t(seq_len) + 1, state_->window.data());
    state_->split_window(inputs + i * seq_len, targets + i * seq_len);
  }
}

}  // namespace t6
