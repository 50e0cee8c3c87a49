// CPU decode_cache_write (kernels/ops.h): each new row's cache entry copied (or transposed) to its
// slot and position, rounded to bf16 for a BF16 cache as float_to_bf16_bits does.
#include "core/bf16.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {

void decode_cache_write(Tensor cache, const Tensor& x, const DecodeRows& rows, bool transpose) {
  T6_CUDA_TWIN(cache, decode_cache_write(cache, x, rows, transpose));
  cpu::require_host(t6_twin_routed, "decode_cache_write", {&cache, &x});
  check_decode_cache_write(cache, x, rows, transpose);
  const int64_t N = x.size(0), a = x.size(1), b = x.size(2), entry = a * b;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t slot = rows.slot.data<int64_t>()[n], position = rows.length.data<int64_t>()[n] - 1;
    const int64_t at = (slot * cache.size(1) + position) * entry;
    const float* row = x.data<float>() + n * entry;
    for (int64_t i = 0; i < a; ++i)
      for (int64_t j = 0; j < b; ++j) {
        const int64_t to = at + (transpose ? j * a + i : i * b + j);
        const float value = row[i * b + j];
        if (cache.dtype() == DType::BF16) static_cast<uint16_t*>(cache.raw())[to] = float_to_bf16_bits(value);
        else cache.data<float>()[to] = value;
      }
  }
}

}  // namespace t6::ops
