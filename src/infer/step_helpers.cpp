#include "infer/step_helpers.h"

#include <cstring>

namespace t6::infer {

std::string attn_weight(int64_t layer, const std::string& name) {
  return str("transformer.h.", layer, ".attn.", name, ".weight");
}

void write_cache_rows(const StepContext& context, std::span<const Tensor> projections) {
  for (size_t field = 0; field < projections.size(); ++field) {
    const int64_t width = projections[field].size(1);
    for (int64_t i = 0; i < context.rows.size(); ++i) {
      const Tensor slot_field = context.cache.field(context.layer, field, context.rows.slot[size_t(i)]);
      std::memcpy(slot_field.data<float>() + context.rows.position[size_t(i)] * width,
                  projections[field].data<float>() + i * width, size_t(width) * sizeof(float));
    }
  }
}

}  // namespace t6::infer
