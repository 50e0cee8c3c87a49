// What the attention steps of every cache kind share (attention_step.cpp, mla_step.cpp): the
// weights' names, writing new rows into the cache (in its dtype), and the rows as the decode ops see them.
#pragma once
#include <string>

#include "infer/attention_step.h"

namespace t6::infer {

// "transformer.h.<layer>.attn.<name>.weight"
std::string attn_weight(int64_t layer, const std::string& name);

// Writes each row of the projection (N, field numel) of `field` to its slot and position, in the
// cache's dtype and on its device. A transposed field (TPA's A_k and A_v, kept rank by head) takes its
// projection as the linear map gives it, head by rank (N, cols, rows).
void write_cache_field(const StepContext& context, size_t field, const Tensor& projection, bool transposed = false);

// The rows of the call as the decode attention ops take them: views of context.rows' slots and lengths.
ops::DecodeRows decode_rows(const StepContext& context);

}  // namespace t6::infer
