#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace t6::infer {

void SamplingOptions::validate() const {
  T6_CHECK(std::isfinite(temperature) && temperature >= 0, "--temperature must be 0 (greedy) or positive, got ",
           temperature);
  T6_CHECK(top_k >= 0, "--top-k must be 0 (no limit) or positive, got ", top_k);
  T6_CHECK(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1], got ", top_p);
}

std::vector<int64_t> nucleus(const std::vector<double>& probabilities, int64_t top_k, double top_p) {
  std::vector<int64_t> order(probabilities.size());
  std::iota(order.begin(), order.end(), int64_t(0));
  auto more_probable = [&](int64_t a, int64_t b) {
    return probabilities[size_t(a)] > probabilities[size_t(b)] || (probabilities[size_t(a)] == probabilities[size_t(b)] && a < b);
  };
  if (top_k > 0 && size_t(top_k) < order.size()) {  // only the k largest need sorting
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(), more_probable);
    order.resize(size_t(top_k));
  } else {
    std::sort(order.begin(), order.end(), more_probable);
  }
  double kept = 0;
  for (int64_t index : order) kept += probabilities[size_t(index)];
  // top-p over the distribution renormalised to the top-k set: stop at the first prefix whose
  // mass reaches p.
  double mass = 0;
  size_t size = 0;
  while (size < order.size()) {
    mass += probabilities[size_t(order[size++])] / kept;
    if (mass >= top_p) break;
  }
  order.resize(size);
  return order;
}

double log_probability(const float* logits, int64_t count, int64_t token) {
  const double largest = *std::max_element(logits, logits + count);
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += std::exp(double(logits[i]) - largest);
  return double(logits[token]) - largest - std::log(sum);
}

Sampler::Sampler(const SamplingOptions& options, uint64_t seed) : options_(options), state_(seed) {
  options_.validate();
}

double Sampler::uniform() {
  // splitmix64 (Steele, Lea, Flood 2014), top 53 bits as a double in [0, 1).
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

int64_t Sampler::next(const float* logits, int64_t count) {
  if (options_.temperature == 0) return std::max_element(logits, logits + count) - logits;  // first of ties
  const double largest = *std::max_element(logits, logits + count);
  probabilities_.resize(size_t(count));
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += probabilities_[size_t(i)] = std::exp((logits[i] - largest) / options_.temperature);
  for (double& probability : probabilities_) probability /= sum;
  std::vector<int64_t> kept;
  if (options_.top_k == 0 && options_.top_p >= 1) {  // the whole vocabulary, in index order
    kept.resize(size_t(count));
    std::iota(kept.begin(), kept.end(), int64_t(0));
  } else {
    kept = nucleus(probabilities_, options_.top_k, options_.top_p);
  }
  double kept_mass = 0;
  for (int64_t index : kept) kept_mass += probabilities_[size_t(index)];
  double target = uniform() * kept_mass;
  for (int64_t index : kept) {
    target -= probabilities_[size_t(index)];
    if (target < 0) return index;
  }
  return kept.back();  // rounding left a sliver past the last kept token
}

}  // namespace t6::infer
