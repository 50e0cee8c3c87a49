// The host-side check of the ops whose rows or columns are a slice of the vocabulary (embedding and
// cross-entropy, split over TP ranks): every token id is in the vocabulary (checked_vocab_range,
// shared with the CUDA backend, is in kernels/shape_checks.h).
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/ops.h"
#include "kernels/shape_checks.h"

namespace t6::ops::cpu {

// The I32 ids of `tokens`, `count` of them, each checked to be in [0, vocab_size).
inline const int32_t* checked_token_ids(const char* op, const Tensor& tokens, int64_t count, int64_t vocab_size) {
  T6_CHECK(tokens.dtype() == DType::I32 && tokens.numel() == count, op, ": expected ", count, " I32 token ids");
  const int32_t* ids = tokens.data<int32_t>();
  for (int64_t n = 0; n < count; ++n)
    T6_CHECK(ids[n] >= 0 && ids[n] < vocab_size, op, ": token id ", ids[n], " at position ", n,
             " is outside the vocabulary of ", vocab_size);
  return ids;
}

}  // namespace t6::ops::cpu
