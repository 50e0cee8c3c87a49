// What the attention steps of every cache kind share (attention_step.cpp, mla_step.cpp): the
// weights' names, writing new rows into the cache (in its dtype), and the rows as the decode ops see them.
#pragma once
#include <span>
#include <string>

#include "infer/attention_step.h"

namespace t6::infer {

// "transformer.h.<layer>.attn.<name>.weight"
std::string attn_weight(int64_t layer, const std::string& name);

// Copies each row of every field's projection (N, field numel) to its slot and position.
void write_cache_rows(const StepContext& context, std::span<const Tensor> projections);

// The rows of the call as the decode attention ops take them: views of context.rows' slots and lengths.
ops::DecodeRows decode_rows(const StepContext& context);

}  // namespace t6::infer
