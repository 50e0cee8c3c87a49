// Scoring continuations the way lm-evaluation-harness does for multiple-choice tasks: each choice's
// log-likelihood is Σ log p(continuation token | context and the continuation before it). Texts
// are split as the harness's encode pair does: trailing spaces of the context move to the start of
// the continuation, the pair is encoded whole and the continuation is what follows the context's
// own tokens; every context starts with EOT (as every training document does). Sequences longer than
// the cache lose context tokens from the left.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "infer/choice_tasks.h"
#include "infer/decoder.h"

namespace t6::infer {

struct ContinuationRequest {
  std::vector<int32_t> context, continuation;  // both non-empty
};

ContinuationRequest encode_pair(const Tokenizer& tokenizer, const std::string& context, const std::string& continuation);

// Summed log-likelihood of each request's continuation, scoring up to decoder.cache().slots()
// requests per batch.
std::vector<double> score_continuations(Decoder& decoder, const std::vector<ContinuationRequest>& requests);

// Per task and overall: acc (argmax of the summed log-likelihood) and acc_norm (argmax of it divided
// by the choice's length in bytes), each with its standard error sqrt(sample variance / n), as the
// harness reports them. Ties go to the first choice.
struct ChoiceScore {
  std::string task;
  int64_t examples = 0;
  double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;
};
struct ExampleOutcome {
  bool correct = false, correct_norm = false;
};
ExampleOutcome judge_example(const ChoiceExample& example, const std::vector<double>& log_likelihoods);
ChoiceScore summarise(const std::string& task, const std::vector<ExampleOutcome>& outcomes);

}  // namespace t6::infer
