#include "infer/step_helpers.h"

#include <cstring>

#include "core/bf16.h"

namespace t6::infer {

std::string attn_weight(int64_t layer, const std::string& name) {
  return str("transformer.h.", layer, ".attn.", name, ".weight");
}

void write_cache_rows(const StepContext& context, std::span<const Tensor> projections) {
  for (size_t field = 0; field < projections.size(); ++field) {
    const int64_t width = projections[field].size(1);
    for (int64_t i = 0; i < context.rows.size(); ++i) {
      const Tensor slot_field = context.cache.field(context.layer, field, context.rows.slot[size_t(i)]);
      const float* row = projections[field].data<float>() + i * width;
      const int64_t at = context.rows.position[size_t(i)] * width;
      if (slot_field.dtype() == DType::BF16) {
        uint16_t* out = static_cast<uint16_t*>(slot_field.raw()) + at;
        for (int64_t j = 0; j < width; ++j) out[j] = float_to_bf16_bits(row[j]);
      } else {
        std::memcpy(slot_field.data<float>() + at, row, size_t(width) * sizeof(float));
      }
    }
  }
}

ops::DecodeRows decode_rows(const StepContext& context) {
  const int64_t N = context.rows.size();
  auto view = [N](const std::vector<int64_t>& values) {
    return Tensor(const_cast<int64_t*>(values.data()), {N}, DType::I64);
  };
  return {view(context.rows.slot), view(context.rows.length), context.block_tokens};
}

}  // namespace t6::infer
