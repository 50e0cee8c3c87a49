#include "infer/generation.h"

#include <algorithm>
#include <chrono>

namespace t6::infer {

int64_t positions_needed(int64_t prompt_tokens, int64_t max_new_tokens) {
  return prompt_tokens + std::max<int64_t>(max_new_tokens - 1, 0);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Appends the tokens and returns the logits of the rows `rows_wanted` (indices into tokens).
std::vector<float> append_and_score(Decoder& decoder, const std::vector<SlotToken>& tokens,
                                    const std::vector<size_t>& rows_wanted) {
  const int64_t d = decoder.config().n_embd, V = decoder.config().vocab_size;
  std::vector<float> hidden(tokens.size() * size_t(d));
  decoder.append(tokens, Tensor(hidden.data(), {int64_t(tokens.size()), d}, DType::F32));
  std::vector<float> wanted(rows_wanted.size() * size_t(d)), logits(rows_wanted.size() * size_t(V));
  for (size_t i = 0; i < rows_wanted.size(); ++i)
    std::copy_n(hidden.data() + rows_wanted[i] * size_t(d), d, wanted.data() + i * size_t(d));
  const int64_t rows = int64_t(rows_wanted.size());
  decoder.logits(Tensor(wanted.data(), {rows, d}, DType::F32), Tensor(logits.data(), {rows, V}, DType::F32));
  return logits;
}

}  // namespace

std::vector<Generated> generate(Decoder& decoder, const std::vector<std::vector<int32_t>>& prompts,
                                const GenerationOptions& options, int64_t first_sequence, const TokenCallback& on_token,
                                GenerationStats& stats) {
  const int64_t slots = int64_t(prompts.size()), V = decoder.config().vocab_size;
  const int64_t vocab_limit = options.vocab_limit > 0 ? std::min(options.vocab_limit, V) : V;
  T6_CHECK(slots >= 1 && slots <= decoder.cache().slots(), "a batch of ", slots, " prompts for ",
           decoder.cache().slots(), " cache slots");
  for (int64_t s = 0; s < slots; ++s) {
    T6_CHECK(!prompts[size_t(s)].empty(), "prompt ", first_sequence + s, " has no tokens");
    const int64_t needed = positions_needed(int64_t(prompts[size_t(s)].size()), options.max_new_tokens);
    T6_CHECK(needed <= decoder.cache().max_context(), "prompt ", first_sequence + s, " (", prompts[size_t(s)].size(),
             " tokens) and --max-new-tokens ", options.max_new_tokens, " need ", needed,
             " cache positions, more than --max-context ", decoder.cache().max_context());
  }
  std::vector<Sampler> samplers;
  std::vector<Generated> generated(static_cast<size_t>(slots));
  std::vector<SlotToken> tokens;
  std::vector<size_t> last_rows;
  for (int64_t s = 0; s < slots; ++s) {
    decoder.clear(s);
    samplers.emplace_back(options.sampling, options.seed + uint64_t(first_sequence + s));
    for (int32_t token : prompts[size_t(s)]) tokens.push_back({s, token});
    last_rows.push_back(tokens.size() - 1);
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits = append_and_score(decoder, tokens, last_rows);
  stats.prefill_seconds += seconds_since(start);
  stats.prefill_tokens += int64_t(tokens.size());

  std::vector<int64_t> running(static_cast<size_t>(slots));  // the slots still generating, in order
  for (int64_t s = 0; s < slots; ++s) running[size_t(s)] = s;
  start = std::chrono::steady_clock::now();
  while (options.max_new_tokens > 0 && !running.empty()) {
    tokens.clear();
    std::vector<int64_t> still_running;
    for (size_t i = 0; i < running.size(); ++i) {
      const int64_t slot = running[i];
      const float* row = logits.data() + i * size_t(V);
      const int32_t token = int32_t(samplers[size_t(slot)].next(row, vocab_limit));
      const double log_prob = log_probability(row, vocab_limit, token);
      Generated& out = generated[size_t(slot)];
      out.tokens.push_back(token);
      out.log_probs.push_back(log_prob);
      if (on_token) on_token(size_t(slot), token, log_prob);
      const bool done = (options.stop_at_eot && token == options.eot) ||
                        int64_t(out.tokens.size()) >= options.max_new_tokens;
      if (done) continue;
      still_running.push_back(slot);
      tokens.push_back({slot, token});
    }
    running = still_running;
    if (running.empty()) break;
    std::vector<size_t> rows(tokens.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    logits = append_and_score(decoder, tokens, rows);
    stats.decode_tokens += int64_t(tokens.size());
  }
  stats.decode_seconds += seconds_since(start);
  return generated;
}

}  // namespace t6::infer
