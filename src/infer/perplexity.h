// Perplexity over the validation split of a token corpus: mean cross-entropy over consecutive
// non-overlapping windows of seq_len + 1 tokens (TokenLoader::read_val), computed with the model's
// own forward_loss exactly as the trainer's evaluation does, and exp of it.
#pragma once
#include <cstdint>
#include <functional>

#include "data/token_loader.h"
#include "model/language_model.h"

namespace t6::infer {

struct PerplexityResult {
  int64_t windows = 0, tokens = 0;
  double mean_loss = 0, perplexity = 0;
};

// The largest batch of at most `wanted` windows that divides `windows` (every batch the same size,
// so the mean of batch means is the mean over all windows).
int64_t perplexity_batch(int64_t windows, int64_t wanted);

// Called after each batch with the windows done so far and the total.
using PerplexityProgress = std::function<void(int64_t windows_done, int64_t windows)>;

// Windows [0, windows) of the val split; model.micro_batch() must divide windows.
PerplexityResult evaluate_perplexity(LanguageModel& model, TokenLoader& loader, int64_t windows,
                                     const PerplexityProgress& progress = {});

}  // namespace t6::infer
