// ctest-mpi-ranks: 2
// ctest-timeout: 300
// Sample generations during training (log.sample_interval, run/sample_generations.h): at TP2 (the
// full weights gathered onto rank 0; sampled at temperature 1, whose tokens follow the whole
// distribution) and at DP2 with ZeRO-1 (rank 0's own weights; greedy), a run with samples every 2
// steps logs, at steps 2 and 4, exactly the continuation that the generation library decodes from
// that step's checkpoint with the same settings and seed, and trains bit for bit as the same run without
// samples (losses, gradient norms and every rank's final weights). A tokenizer file that cannot be
// read stops every rank at start-up, naming the key and the file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/training_setup.h"
#include "data/tokenizer.h"
#include "infer/generation.h"
#include "infer/model_source.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;

namespace {

constexpr const char* kPrompt = "ROMEO:";
constexpr int64_t kSampleTokens = 12;

RunConfig config_of(int tp, bool zero1, int64_t sample_interval, double temperature = 0) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.parallel.tp = tp;
  config.parallel.zero1 = zero1;
  config.train.max_steps = 4;
  config.checkpoint.interval = 2;  // a checkpoint at every sample, to decode the reference from
  config.log.sample_interval = sample_interval;
  config.log.sample_prompt = kPrompt;
  config.log.sample_tokens = kSampleTokens;
  config.log.sample_temperature = temperature;
  return config;
}

std::vector<nlohmann::json> sample_records(const std::string& run_dir) {
  std::vector<nlohmann::json> records;
  std::ifstream file(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(file, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("sample")) records.push_back(record);
  }
  return records;
}

// The continuation of EOT + kPrompt by the checkpoint of `step`, decoded as t6_generate does.
std::pair<std::vector<int32_t>, std::string> reference_sample(const RunConfig& config, const std::string& run_dir,
                                                              int64_t step) {
  const infer::ModelSource source =
      infer::open_model_source(str(run_dir, "/checkpoints/step_", std::string(8 - std::to_string(step).size(), '0'), step));
  ModelWeights weights(source.config, 0, 1, 1, false);
  infer::load_model_weights(source, weights);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(""));
  infer::GenerationOptions options;
  options.max_new_tokens = kSampleTokens;
  options.sampling.temperature = config.log.sample_temperature;
  options.seed = config.train.seed;
  options.vocab_limit = tokenizer.vocab_size();
  options.eot = int32_t(tokenizer.eot_id());
  std::vector<int32_t> prompt = {options.eot};
  for (uint32_t id : tokenizer.encode(kPrompt)) prompt.push_back(int32_t(id));
  infer::Decoder decoder(weights, 1, infer::positions_needed(int64_t(prompt.size()), kSampleTokens));
  infer::GenerationStats stats;
  const std::vector<int32_t> tokens = infer::generate(decoder, {prompt}, options, 0, nullptr, stats)[0].tokens;
  std::vector<uint32_t> ids(tokens.begin(), tokens.end());
  if (!ids.empty() && ids.back() == tokenizer.eot_id()) ids.pop_back();
  return {tokens, tokenizer.decode(ids)};
}

// Bit patterns, so that two NaNs of the same bits compare equal and a NaN never equals a number.
uint64_t bits_of(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

void expect_samples_match_checkpoints(int tp, bool zero1, double temperature) {
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), tp, 0);
  const std::string plain_dir = shared_run_dir("plain"), sampled_dir = shared_run_dir("sampled");
  Trainer plain(config_of(tp, zero1, 0), grid, plain_dir);
  plain.run();
  const RunConfig sampled_config = config_of(tp, zero1, 2, temperature);
  Trainer sampled(sampled_config, grid, sampled_dir);
  sampled.run();

  // Training is untouched: every rank's weights, and the logged losses and gradient norms.
  const Tensor plain_weights = plain.model().weights().params(), sampled_weights = sampled.model().weights().params();
  EXPECT_EQ(std::memcmp(plain_weights.data<float>(), sampled_weights.data<float>(), plain_weights.bytes()), 0)
      << "rank " << world_rank() << ": the final weights differ with samples on";
  if (world_rank() == 0) {
    const StepRecords expected = read_step_records(plain_dir), actual = read_step_records(sampled_dir);
    ASSERT_EQ(actual.losses.size(), expected.losses.size());
    for (size_t i = 0; i < expected.losses.size(); ++i) {
      EXPECT_EQ(bits_of(actual.losses[i]), bits_of(expected.losses[i])) << "loss of step " << expected.steps[i];
      EXPECT_EQ(bits_of(actual.grad_norms[i]), bits_of(expected.grad_norms[i])) << "grad norm of step " << expected.steps[i];
    }
    EXPECT_TRUE(sample_records(plain_dir).empty());
    const std::vector<nlohmann::json> samples = sample_records(sampled_dir);
    ASSERT_EQ(samples.size(), 2u);
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t step = samples[i]["step"];
      EXPECT_EQ(step, int64_t(2 * (i + 1)));
      const auto [tokens, text] = reference_sample(sampled_config, sampled_dir, step);
      EXPECT_EQ(samples[i]["sample_tokens"].get<std::vector<int32_t>>(), tokens) << "step " << step;
      EXPECT_EQ(samples[i]["sample"].get<std::string>(), text) << "step " << step;
      EXPECT_EQ(samples[i]["sample_prompt"].get<std::string>(), kPrompt);
    }
  }
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

}  // namespace

TEST(SampleGenerations, TensorParallel2GathersTheCheckpointsWeights) { expect_samples_match_checkpoints(2, false, 1.0); }

TEST(SampleGenerations, DataParallel2Zero1DecodesRank0sWeights) { expect_samples_match_checkpoints(1, true, 0.0); }

TEST(SampleGenerations, UnreadableTokenizerStopsEveryRankAtStartUp) {
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 1, 0);
  const std::string run_dir = shared_run_dir("no_tokenizer"), missing = run_dir + "/missing.tiktoken";
  const char* saved = std::getenv("T6_TOKENIZER");
  const std::string previous = saved ? saved : "";
  setenv("T6_TOKENIZER", missing.c_str(), 1);
  const std::string message = error_of([&] { Trainer trainer(config_of(1, false, 2), grid, run_dir); });
  if (saved) setenv("T6_TOKENIZER", previous.c_str(), 1);
  else unsetenv("T6_TOKENIZER");
  expect_mentions(message, {"log.sample_interval", missing});
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}
