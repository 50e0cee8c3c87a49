// ctest-labels: infer
// Sampling (src/infer/sampling.h) on known logits: greedy is the argmax, a seed repeats its draws,
// top-k 1 is greedy, top-p keeps the smallest most-probable set whose mass reaches p, and the
// draws follow the kept distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error_expectations.h"
#include "infer/sampling.h"

namespace t6::infer {
namespace {

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};  // argmax: 1 (first of the tied 1 and 4)

std::vector<int64_t> draws(const SamplingOptions& options, uint64_t seed, int count) {
  Sampler sampler(options, seed);
  std::vector<int64_t> out;
  for (int i = 0; i < count; ++i) out.push_back(sampler.next(kLogits.data(), int64_t(kLogits.size())));
  return out;
}

TEST(Sampling, GreedyIsTheFirstArgmax) {
  EXPECT_EQ(draws({0.0, 0, 1.0}, 1, 5), std::vector<int64_t>(5, 1));
  EXPECT_EQ(draws({0.0, 0, 1.0}, 2, 5), std::vector<int64_t>(5, 1));  // the seed does not matter
}

TEST(Sampling, ASeedRepeatsAndAnotherSeedDiffers) {
  const SamplingOptions options{1.0, 0, 1.0};
  EXPECT_EQ(draws(options, 42, 50), draws(options, 42, 50));
  EXPECT_NE(draws(options, 42, 50), draws(options, 43, 50));
}

TEST(Sampling, TopKOneIsGreedy) { EXPECT_EQ(draws({1.5, 1, 1.0}, 7, 20), std::vector<int64_t>(20, 1)); }

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.4, 0.3, 0.2, 0.1 (index order 2, 0, 3, 1 by size).
  const std::vector<double> p = {0.3, 0.1, 0.4, 0.2};
  EXPECT_EQ(nucleus(p, 0, 0.4), (std::vector<int64_t>{2}));         // 0.4 reaches 0.4
  EXPECT_EQ(nucleus(p, 0, 0.41), (std::vector<int64_t>{2, 0}));     // 0.7
  EXPECT_EQ(nucleus(p, 0, 0.7), (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(nucleus(p, 0, 0.95), (std::vector<int64_t>{2, 0, 3, 1}));
  EXPECT_EQ(nucleus(p, 0, 1.0), (std::vector<int64_t>{2, 0, 3, 1}));
  // top-k first, then top-p over the renormalised k: {0.4, 0.3} → 4/7, 3/7.
  EXPECT_EQ(nucleus(p, 2, 0.5), (std::vector<int64_t>{2}));
  EXPECT_EQ(nucleus(p, 2, 0.6), (std::vector<int64_t>{2, 0}));
}

TEST(Sampling, DrawsFollowTheKeptDistribution) {
  // Logits log(0.4), log(0.3), log(0.2), log(0.1) with top-p 0.75: tokens 0, 1, 2 kept, in
  // proportion 4 : 3 : 2.
  const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  Sampler sampler({1.0, 0, 0.75}, 5);
  std::map<int64_t, int> counts;
  const int n = 90000;
  for (int i = 0; i < n; ++i) ++counts[sampler.next(logits.data(), 4)];
  EXPECT_EQ(counts.count(3), 0u);
  EXPECT_NEAR(counts[0] / double(n), 4.0 / 9, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 3.0 / 9, 0.01);
  EXPECT_NEAR(counts[2] / double(n), 2.0 / 9, 0.01);
}

TEST(Sampling, LogProbabilityIsTheLogSoftmax) {
  double sum = 0;
  for (float logit : kLogits) sum += std::exp(double(logit));
  EXPECT_NEAR(log_probability(kLogits.data(), 6, 3), 1.5 - std::log(sum), 1e-12);
}

TEST(Sampling, BadOptionsNameTheFlag) {
  testing::expect_mentions(testing::error_of([] { SamplingOptions{-1.0, 0, 1.0}.validate(); }), {"--temperature"});
  testing::expect_mentions(testing::error_of([] { SamplingOptions{1.0, -2, 1.0}.validate(); }), {"--top-k"});
  testing::expect_mentions(testing::error_of([] { SamplingOptions{1.0, 0, 0.0}.validate(); }), {"--top-p"});
}

}  // namespace
}  // namespace t6::infer
