// ctest-labels: infer
// Choice scoring (src/infer/choice_scoring.h): each continuation's log-likelihood is the sum of the
// log-softmax of the model's full-forward logits at the rows that predict it (also when the context
// is cut from the left to fit), and acc / acc_norm with their standard errors match a hand count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/training_setup.h"
#include "data/tokenizer.h"
#include "infer/choice_scoring.h"
#include "model/language_model.h"

namespace t6::infer {
namespace {

// Σ log softmax(forward logits)[continuation token] from a full forward of `inputs` (the sequence as
// the cache holds it, without the last continuation token), whose last rows predict the continuation.
double reference_log_likelihood(LanguageModel& model, const std::vector<int32_t>& inputs,
                                const std::vector<int32_t>& continuation) {
  const int64_t T = model.seq_len(), V = model.config().vocab_size;
  std::vector<int32_t> padded(size_t(T), 0);
  std::copy(inputs.begin(), inputs.end(), padded.begin());
  std::vector<float> logits(size_t(T * V));
  model.forward_logits(Tensor(padded.data(), {1, T}, DType::I32), Tensor(logits.data(), {1, T, V}, DType::F32));
  double total = 0;
  const size_t first = inputs.size() - continuation.size();  // the row predicting continuation[0]
  for (size_t j = 0; j < continuation.size(); ++j) {
    const float* row = logits.data() + (first + j) * size_t(V);
    double largest = *std::max_element(row, row + V), sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - largest);
    total += double(row[continuation[j]]) - largest - std::log(sum);
  }
  return total;
}

TEST(ChoiceScoring, LogLikelihoodsAreTheForwardsLogSoftmaxSums) {
  const int64_t capacity = 20;
  LanguageModel model(testing::fixture_model_config(ModelKind::T6), 1, capacity, nullptr, 1, false);
  std::mt19937 generator(9);
  std::uniform_real_distribution<float> uniform(-0.3f, 0.3f);
  for (int64_t i = 0; i < model.weights().params().numel(); ++i) model.weights().params().data<float>()[i] = uniform(generator);
  auto tokens = [&](size_t count) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < count; ++i) ids.push_back(int32_t(generator() % 128));
    return ids;
  };
  // Five requests on three slots (two batches); the last has 24 + 3 tokens, more than fit.
  const std::vector<ContinuationRequest> requests = {
      {tokens(5), tokens(3)}, {tokens(1), tokens(1)}, {tokens(9), tokens(6)}, {tokens(2), tokens(4)}, {tokens(24), tokens(3)}};
  Decoder decoder(model.weights(), 3, capacity, DecodeOptions{4, TpaDecodeOrder::factorised, 16});
  const std::vector<double> scores = score_continuations(decoder, requests);
  ASSERT_EQ(scores.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<int32_t> inputs = requests[i].context;
    inputs.insert(inputs.end(), requests[i].continuation.begin(), requests[i].continuation.end() - 1);
    if (inputs.size() > size_t(capacity)) inputs.erase(inputs.begin(), inputs.end() - capacity);  // cut from the left
    EXPECT_NEAR(scores[i], reference_log_likelihood(model, inputs, requests[i].continuation), 1e-4) << "request " << i;
  }
}

TEST(ChoiceScoring, AccAndAccNormMatchAHandCount) {
  // Choices of 1, 4 and 2 bytes; per example the log-likelihoods, then what acc (argmax) and
  // acc_norm (argmax of ll / bytes) pick, against the label.
  const std::vector<std::string> choices = {"a", "bbbb", "cc"};
  const std::vector<std::pair<int64_t, std::vector<double>>> examples = {
      {0, {-1.0, -2.0, -3.0}},   // acc 0 right;  norm −1, −0.5, −1.5 → 1 wrong
      {1, {-3.0, -1.0, -2.5}},   // acc 1 right;  norm −3, −0.25, −1.25 → 1 right
      {0, {-0.5, -3.0, -0.8}},   // acc 0 right;  norm −0.5, −0.75, −0.4 → 2 wrong
      {0, {-1.0, -1.0, -1.0}},   // acc: ties go to 0, right; norm −1, −0.25, −0.5 → 1 wrong
      {2, {-1.0, -2.0, -1.5}},   // acc 0 wrong;  norm −1, −0.5, −0.75 → 1 wrong
      {1, {-2.0, -2.2, -5.0}}};  // acc 0 wrong;  norm −2, −0.55, −2.5 → 1 right
  const std::vector<bool> acc = {true, true, true, true, false, false}, norm = {false, true, false, false, false, true};
  std::vector<ExampleOutcome> outcomes;
  for (size_t i = 0; i < examples.size(); ++i) {
    outcomes.push_back(judge_example(ChoiceExample{{"", "", ""}, choices, examples[i].first}, examples[i].second));
    EXPECT_EQ(outcomes.back().correct, acc[i]) << "example " << i;
    EXPECT_EQ(outcomes.back().correct_norm, norm[i]) << "example " << i;
  }
  const ChoiceScore score = summarise("hand", outcomes);
  EXPECT_EQ(score.examples, 6);
  EXPECT_DOUBLE_EQ(score.acc, 4.0 / 6);
  EXPECT_DOUBLE_EQ(score.acc_norm, 2.0 / 6);
  // Sample variance of four ones and two zeros: (4·(1/3)² + 2·(2/3)²) / 5 = 4/15; stderr sqrt(4/15 / 6).
  EXPECT_NEAR(score.acc_stderr, std::sqrt(2.0 / 45), 1e-15);
  EXPECT_NEAR(score.acc_norm_stderr, std::sqrt(2.0 / 45), 1e-15);
}

TEST(ChoiceScoring, PairsAreSplitAsTheHarnessDoes) {
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(""));
  const ContinuationRequest with_space = encode_pair(tokenizer, "The sky is ", "blue");
  const ContinuationRequest plain = encode_pair(tokenizer, "The sky is", " blue");
  EXPECT_EQ(with_space.context, plain.context);  // the trailing space moves to the continuation
  EXPECT_EQ(with_space.continuation, plain.continuation);
  EXPECT_EQ(plain.context.front(), int32_t(tokenizer.eot_id()));
  std::vector<uint32_t> continuation(plain.continuation.begin(), plain.continuation.end());
  EXPECT_EQ(tokenizer.decode(continuation), " blue");
}

}  // namespace
}  // namespace t6::infer
