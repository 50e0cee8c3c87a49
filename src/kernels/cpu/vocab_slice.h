// Shared checks of the ops whose rows or columns are a slice of the vocabulary (embedding and
// cross-entropy, split over TP ranks): the slice fits the vocabulary, and every token id is in it.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6::ops::cpu {

struct VocabRange {
  int64_t first, vocab_size;
};

// The slice with vocab_size filled in (0 means: the local size, no split), checked to fit.
inline VocabRange checked_vocab_range(const char* op, const VocabSlice& slice, int64_t local_size) {
  const int64_t vocab_size = slice.vocab_size > 0 ? slice.vocab_size : local_size;
  T6_CHECK(slice.first_row >= 0 && slice.first_row + local_size <= vocab_size, op, ": vocabulary slice [",
           slice.first_row, ", ", slice.first_row + local_size, ") does not fit a vocabulary of ", vocab_size);
  return {slice.first_row, vocab_size};
}

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
