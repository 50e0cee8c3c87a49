#include "infer/perplexity.h"

#include <cmath>
#include <vector>

namespace t6::infer {

int64_t perplexity_batch(int64_t windows, int64_t wanted) {
  for (int64_t batch = std::min(windows, wanted); batch > 1; --batch)
    if (windows % batch == 0) return batch;
  return 1;
}

PerplexityResult evaluate_perplexity(LanguageModel& model, TokenLoader& loader, int64_t windows,
                                     const PerplexityProgress& progress) {
  const int64_t B = model.micro_batch(), T = model.seq_len();
  T6_CHECK(windows >= 1 && windows <= loader.val_windows(), "--windows ", windows, ": the val split has ",
           loader.val_windows(), " windows of ", T + 1, " tokens");
  T6_ASSERT(windows % B == 0);
  std::vector<int32_t> inputs(size_t(B * T)), targets(size_t(B * T));
  double loss = 0;
  for (int64_t first = 0; first < windows; first += B) {
    loader.read_val(first, B, inputs.data(), targets.data());
    loss += model.forward_loss(Tensor(inputs.data(), {B, T}, DType::I32), Tensor(targets.data(), {B, T}, DType::I32));
    if (progress) progress(first + B, windows);
  }
  PerplexityResult result;
  result.windows = windows;
  result.tokens = windows * T;
  result.mean_loss = loss / double(windows / B);
  result.perplexity = std::exp(result.mean_loss);
  return result;
}

}  // namespace t6::infer
