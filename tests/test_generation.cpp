// ctest-labels: infer
// Generation (src/infer/generation.h) on a small random model: greedy output is deterministic and
// the same in a batch of prompts of different lengths as alone, a seed repeats its samples, the
// reported log-probabilities are the full forward's log-softmax, EOT stops a sequence, and a prompt
// that does not fit the cache is refused before any work.
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error_expectations.h"
#include "common/training_setup.h"
#include "infer/generation.h"
#include "model/language_model.h"

namespace t6::infer {
namespace {

void randomise(ModelWeights& weights) {
  std::mt19937 generator(5);
  std::uniform_real_distribution<float> uniform(-0.3f, 0.3f);
  float* data = weights.params().data<float>();
  for (int64_t i = 0; i < weights.params().numel(); ++i) data[i] = uniform(generator);
}

class Generation : public ::testing::Test {
 protected:
  Generation() : model_(testing::fixture_model_config(ModelKind::T6), 1, 32, nullptr, 1, false) {
    randomise(model_.weights());
  }
  std::vector<Generated> run(const std::vector<std::vector<int32_t>>& prompts, const GenerationOptions& options,
                             int64_t slots = 3) {
    Decoder decoder(model_.weights(), slots, 32, DecodeOptions{4, TpaDecodeOrder::factorised, 16});
    GenerationStats stats;
    return generate(decoder, prompts, options, 0, {}, stats);
  }
  LanguageModel model_;
  const std::vector<std::vector<int32_t>> prompts_ = {{5, 9, 17, 3, 3, 90, 41}, {1}, {64, 2, 7}};
};

GenerationOptions greedy(int64_t tokens) {
  GenerationOptions options;
  options.max_new_tokens = tokens;
  options.sampling.temperature = 0;
  options.stop_at_eot = false;
  return options;
}

TEST_F(Generation, GreedyIsDeterministicAndTheSameBatchedAsAlone) {
  const std::vector<Generated> batched = run(prompts_, greedy(12));
  ASSERT_EQ(batched.size(), 3u);
  EXPECT_EQ(run(prompts_, greedy(12))[1].tokens, batched[1].tokens);
  for (size_t i = 0; i < prompts_.size(); ++i) {
    EXPECT_EQ(batched[i].tokens.size(), 12u);
    EXPECT_EQ(run({prompts_[i]}, greedy(12), 1)[0].tokens, batched[i].tokens) << "prompt " << i;
  }
}

TEST_F(Generation, ASeedRepeatsItsSamples) {
  GenerationOptions options = greedy(16);
  options.sampling.temperature = 1.0;
  options.seed = 99;
  const auto first = run(prompts_, options), second = run(prompts_, options);
  for (size_t i = 0; i < prompts_.size(); ++i) EXPECT_EQ(first[i].tokens, second[i].tokens);
  options.seed = 100;
  EXPECT_NE(run(prompts_, options)[0].tokens, first[0].tokens);
}

TEST_F(Generation, LogProbabilitiesAreTheFullForwardsLogSoftmax) {
  const Generated generated = run({prompts_[0]}, greedy(10), 1)[0];
  std::vector<int32_t> sequence = prompts_[0];
  sequence.insert(sequence.end(), generated.tokens.begin(), generated.tokens.end());
  const int64_t T = 32, V = model_.config().vocab_size;
  std::vector<int32_t> inputs(size_t(T), 0);
  std::copy(sequence.begin(), sequence.end(), inputs.begin());
  std::vector<float> logits(size_t(T * V));
  model_.forward_logits(Tensor(inputs.data(), {1, T}, DType::I32), Tensor(logits.data(), {1, T, V}, DType::F32));
  for (size_t i = 0; i < generated.tokens.size(); ++i) {
    const int64_t position = int64_t(prompts_[0].size() + i) - 1;  // the row that predicts token i
    const float* row = logits.data() + position * V;
    double sum = 0, largest = *std::max_element(row, row + V);
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - largest);
    const double expected = double(row[generated.tokens[i]]) - largest - std::log(sum);
    EXPECT_NEAR(generated.log_probs[i], expected, 1e-4) << "token " << i;
    EXPECT_EQ(generated.tokens[i], int32_t(std::max_element(row, row + V) - row)) << "greedy token " << i;
  }
}

TEST_F(Generation, EotStopsASequenceUnlessIgnored) {
  GenerationOptions options = greedy(8);
  const int32_t first = run({prompts_[2]}, options, 1)[0].tokens[0];
  options.eot = first;
  options.stop_at_eot = true;
  EXPECT_EQ(run({prompts_[2]}, options, 1)[0].tokens, std::vector<int32_t>{first});
  options.stop_at_eot = false;
  EXPECT_EQ(run({prompts_[2]}, options, 1)[0].tokens.size(), 8u);
}

TEST_F(Generation, APromptThatDoesNotFitIsRefused) {
  testing::expect_mentions(testing::error_of([&] { run({std::vector<int32_t>(30, 1)}, greedy(4), 1); }),
                           {"prompt 0", "30 tokens", "--max-context 32"});
}

}  // namespace
}  // namespace t6::infer
