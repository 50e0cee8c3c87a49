// Inputs of decode-attention calls for the tests of the CPU op and of its CUDA twin: the rows of a
// call (slot 2 at the given length, then, unless `single`, slot 0 at a third of it and slot 1 at
// length 1, so a call mixes a long row, a shorter one and a one-position one, each in a slot of its
// own), and seeded values uniform in [-1, 1) for queries and caches.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/ops.h"

namespace t6::testing {

inline std::vector<float> uniform_values(int64_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = uniform(generator);
  return values;
}

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
