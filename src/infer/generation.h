// Generating continuations of a batch of prompts, each in its own cache slot and of its own length:
// one packed prefill call over every prompt token, then one decode call per step over the
// sequences still running. A sequence stops at max_new_tokens or, unless ignored, at EOT.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "infer/decoder.h"
#include "infer/sampling.h"

namespace t6::infer {

struct GenerationOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  uint64_t seed = 1337;     // sequence i of a batch samples with seed + first_sequence + i
  bool stop_at_eot = true;
  int64_t vocab_limit = 0;  // tokens that may be sampled: [0, vocab_limit) (the tokenizer's vocabulary)
  int32_t eot = 50256;
};

struct Generated {
  std::vector<int32_t> tokens;     // the new tokens (EOT included when it stopped there)
  std::vector<double> log_probs;   // log p(token | everything before) under the model (temperature 1)
};

struct GenerationStats {
  int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Called as each token is chosen: (index of the sequence in the batch, token, its log-probability).
using TokenCallback = std::function<void(size_t, int32_t, double)>;

// The tokens a prompt needs in the cache: the prompt and every new token but the last.
int64_t positions_needed(int64_t prompt_tokens, int64_t max_new_tokens);

// Prompts (non-empty, at most decoder slots of them) go to slots 0, 1, …; `first_sequence` numbers
// the batch's first prompt among all prompts (for its seed). Throws before any work when a prompt
// and its new tokens do not fit the cache.
std::vector<Generated> generate(Decoder& decoder, const std::vector<std::vector<int32_t>>& prompts,
                                const GenerationOptions& options, int64_t first_sequence, const TokenCallback& on_token,
                                GenerationStats& stats);

}  // namespace t6::infer
