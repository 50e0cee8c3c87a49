#include "infer/choice_scoring.h"

#include <algorithm>
#include <cmath>

#include "infer/sampling.h"

namespace t6::infer {

ContinuationRequest encode_pair(const Tokenizer& tokenizer, const std::string& context, const std::string& continuation) {
  const size_t kept = context.find_last_not_of(' ') == std::string::npos ? 0 : context.find_last_not_of(' ') + 1;
  const std::string head = context.substr(0, kept), tail = context.substr(kept) + continuation;
  const std::vector<uint32_t> whole = tokenizer.encode(head + tail), head_ids = tokenizer.encode(head);
  ContinuationRequest request;
  request.context.push_back(int32_t(tokenizer.eot_id()));
  for (uint32_t id : head_ids) request.context.push_back(int32_t(id));
  // The harness takes the pair's tokens after the context's token count.
  for (size_t i = std::min(head_ids.size(), whole.size()); i < whole.size(); ++i) request.continuation.push_back(int32_t(whole[i]));
  T6_CHECK(!request.continuation.empty(), "the continuation '", continuation, "' encodes to no tokens of its own");
  return request;
}

std::vector<double> score_continuations(Decoder& decoder, const std::vector<ContinuationRequest>& requests) {
  const int64_t slots = decoder.cache().slots(), capacity = decoder.cache().max_context();
  const int64_t d = decoder.config().n_embd, V = decoder.config().vocab_size;
  std::vector<double> scores(requests.size(), 0.0);
  std::vector<float> hidden, logits;
  for (size_t first = 0; first < requests.size(); first += size_t(slots)) {
    const size_t count = std::min(size_t(slots), requests.size() - first);
    std::vector<SlotToken> tokens;
    std::vector<size_t> scored_rows;       // the rows whose logits predict a continuation token
    std::vector<int32_t> scored_targets;   // the token each predicts
    std::vector<size_t> scored_request;
    for (size_t i = 0; i < count; ++i) {
      const ContinuationRequest& request = requests[first + i];
      const int64_t slot = int64_t(i);
      T6_CHECK(int64_t(request.continuation.size()) < capacity, "a continuation of ", request.continuation.size(),
               " tokens does not fit a context of ", capacity);
      std::vector<int32_t> sequence = request.context;
      sequence.insert(sequence.end(), request.continuation.begin(), request.continuation.end());
      // Only the input tokens go in: the last continuation token is a target only.
      sequence.pop_back();
      const size_t drop = sequence.size() > size_t(capacity) ? sequence.size() - size_t(capacity) : 0;
      decoder.clear(slot);
      const size_t first_scored = request.context.size() - 1;  // the context's last token predicts the first
      for (size_t t = drop; t < sequence.size(); ++t) {
        if (t >= first_scored) {
          scored_rows.push_back(tokens.size());
          scored_targets.push_back(request.continuation[t - first_scored]);
          scored_request.push_back(first + i);
        }
        tokens.push_back({slot, sequence[t]});
      }
    }
    hidden.assign(tokens.size() * size_t(d), 0.0f);
    decoder.append(tokens, Tensor(hidden.data(), {int64_t(tokens.size()), d}, DType::F32));
    std::vector<float> rows(scored_rows.size() * size_t(d));
    for (size_t i = 0; i < scored_rows.size(); ++i)
      std::copy_n(hidden.data() + scored_rows[i] * size_t(d), d, rows.data() + i * size_t(d));
    logits.assign(scored_rows.size() * size_t(V), 0.0f);
    const int64_t n = int64_t(scored_rows.size());
    decoder.logits(Tensor(rows.data(), {n, d}, DType::F32), Tensor(logits.data(), {n, V}, DType::F32));
    for (size_t i = 0; i < scored_rows.size(); ++i)
      scores[scored_request[i]] += log_probability(logits.data() + i * size_t(V), V, scored_targets[i]);
  }
  return scores;
}

ExampleOutcome judge_example(const ChoiceExample& example, const std::vector<double>& log_likelihoods) {
  T6_ASSERT(log_likelihoods.size() == example.choices.size());
  size_t best = 0, best_norm = 0;
  for (size_t i = 1; i < log_likelihoods.size(); ++i) {
    if (log_likelihoods[i] > log_likelihoods[best]) best = i;
    if (log_likelihoods[i] / double(example.choices[i].size()) >
        log_likelihoods[best_norm] / double(example.choices[best_norm].size()))
      best_norm = i;
  }
  return {int64_t(best) == example.label, int64_t(best_norm) == example.label};
}

namespace {
// Mean of 0/1 outcomes and its standard error sqrt(s² / n), s² the sample variance (n − 1).
std::pair<double, double> mean_and_stderr(const std::vector<ExampleOutcome>& outcomes, bool ExampleOutcome::*field) {
  const double n = double(outcomes.size());
  double hits = 0;
  for (const ExampleOutcome& outcome : outcomes) hits += outcome.*field ? 1 : 0;
  const double mean = hits / n;
  if (outcomes.size() < 2) return {mean, 0.0};
  const double variance = (hits * (1 - mean) * (1 - mean) + (n - hits) * mean * mean) / (n - 1);
  return {mean, std::sqrt(variance / n)};
}
}  // namespace

ChoiceScore summarise(const std::string& task, const std::vector<ExampleOutcome>& outcomes) {
  T6_ASSERT(!outcomes.empty());
  ChoiceScore score{task, int64_t(outcomes.size())};
  std::tie(score.acc, score.acc_stderr) = mean_and_stderr(outcomes, &ExampleOutcome::correct);
  std::tie(score.acc_norm, score.acc_norm_stderr) = mean_and_stderr(outcomes, &ExampleOutcome::correct_norm);
  return score;
}

}  // namespace t6::infer
