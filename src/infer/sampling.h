// Choosing the next token from a row of logits: greedy (temperature 0), or sampling from the softmax
// of logits / temperature restricted to the top-k tokens and then to the top-p nucleus (the
// smallest set of most probable tokens whose probability reaches p). The random stream is
// counter-free and portable (splitmix64), so a seed repeats on every machine.
#pragma once
#include <cstdint>
#include <vector>

namespace t6::infer {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // 1: no limit
  void validate() const;     // throws naming --temperature, --top-k or --top-p
};

// The indices top-k and then top-p keep of probabilities `probabilities` (summing to 1), most
// probable first (ties: lower index first).
std::vector<int64_t> nucleus(const std::vector<double>& probabilities, int64_t top_k, double top_p);

// log softmax(logits)[token], in double.
double log_probability(const float* logits, int64_t count, int64_t token);

class Sampler {
 public:
  Sampler(const SamplingOptions& options, uint64_t seed);
  // A token among logits[0, count) (count: the tokenizer's vocabulary, below the model's padded one).
  int64_t next(const float* logits, int64_t count);

 private:
  double uniform();  // [0, 1)
  SamplingOptions options_;
  uint64_t state_;
  std::vector<double> probabilities_;
};

}  // namespace t6::infer
