#include "infer/step_helpers.h"

namespace t6::infer {

std::string attn_weight(int64_t layer, const std::string& name) {
  return str("transformer.h.", layer, ".attn.", name, ".weight");
}

void write_cache_field(const StepContext& context, size_t field, const Tensor& projection, bool transposed) {
  const CacheField& shape = context.cache.fields()[field];
  const int64_t N = context.rows.size();
  const Tensor rows = transposed ? projection.view({N, shape.cols, shape.rows}) : projection.view({N, shape.rows, shape.cols});
  ops::decode_cache_write(context.cache.layer_field(context.layer, field), rows, decode_rows(context), transposed);
}

ops::DecodeRows decode_rows(const StepContext& context) {
  const int64_t N = context.rows.size();
  auto view = [N](const std::vector<int64_t>& values) {
    return Tensor(const_cast<int64_t*>(values.data()), {N}, DType::I64);
  };
  return {view(context.rows.slot), view(context.rows.length), context.block_tokens};
}

}  // namespace t6::infer
