// The rows of one decode-attention call for the tests of the CPU op and of its CUDA twin: slot 2
// at the given length, then (unless `single`) slot 0 at a third of it and slot 1 at length 1, so a
// call mixes a long row, a shorter one and a one-position one, each in a slot of its own.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace t6::testing {

struct DecodeCallRows {
  std::vector<int64_t> slot, length;
  ops::DecodeRows view;  // points into slot and length: a copy still reads the original's
  DecodeCallRows(int64_t first_length, int64_t block, bool single) {
    slot = {2}, length = {first_length};
    if (!single) slot.insert(slot.end(), {0, 1}), length.insert(length.end(), {std::max<int64_t>(1, first_length / 3), 1});
    const int64_t N = int64_t(slot.size());
    view = {Tensor(slot.data(), {N}, DType::I64), Tensor(length.data(), {N}, DType::I64), block};
  }
  int64_t size() const { return int64_t(slot.size()); }
};

}  // namespace t6::testing
