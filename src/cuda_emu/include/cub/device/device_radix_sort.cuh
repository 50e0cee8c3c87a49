// Stands in for CUB's <cub/device/device_radix_sort.cuh> in the emulated build: the two-phase
// cub::DeviceRadixSort::SortPairs (a temporary-storage size query with d_temp_storage == nullptr,
// then the sort), as device work on the given stream. The sort is a stable sort by the key bits
// [begin_bit, end_bit), in the order CUB's radix sort gives (signed keys with the sign bit flipped,
// so negative keys come first), done on the host inside the work.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "../../../device_work.h"

namespace cub {

struct DeviceRadixSort {
  // What the emulated sort asks for: one byte, so that callers that skip the size query, or
  // allocate less than it said, are caught.
  static constexpr size_t kTempStorageBytes = 1;

  template <class KeyT, class ValueT, class NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in, KeyT* d_keys_out,
                               const ValueT* d_values_in, ValueT* d_values_out, NumItemsT num_items, int begin_bit = 0,
                               int end_bit = int(sizeof(KeyT) * 8), cudaStream_t stream = 0) {
    static_assert(std::is_integral_v<KeyT>, "the emulated SortPairs sorts integer keys (all t6 uses)");
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = kTempStorageBytes;
      return cudaSuccess;
    }
    if (temp_storage_bytes < kTempStorageBytes || begin_bit < 0 || end_bit > int(sizeof(KeyT) * 8) ||
        begin_bit >= end_bit || num_items < 0) {
      t6::cuda_emu::set_launch_error(cudaErrorInvalidValue,
                                     "cub::DeviceRadixSort::SortPairs: temp_storage_bytes " +
                                         std::to_string(temp_storage_bytes) + ", bits [" + std::to_string(begin_bit) +
                                         ", " + std::to_string(end_bit) + "), " + std::to_string(num_items) + " items");
      return cudaErrorInvalidValue;
    }
    const size_t count = size_t(num_items);
    t6::cuda_emu::enqueue(stream, "cub::DeviceRadixSort::SortPairs", [=] {
      using Bits = std::make_unsigned_t<KeyT>;
      constexpr Bits sign = std::is_signed_v<KeyT> ? Bits(Bits(1) << (sizeof(KeyT) * 8 - 1)) : Bits(0);
      const int width = end_bit - begin_bit;
      const Bits mask = width >= int(sizeof(Bits) * 8) ? Bits(~Bits(0)) : Bits((Bits(1) << width) - 1);
      auto radix = [&](KeyT key) { return Bits(Bits(Bits(key) ^ sign) >> begin_bit) & mask; };
      std::vector<size_t> order(count);
      std::iota(order.begin(), order.end(), size_t(0));
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return radix(d_keys_in[a]) < radix(d_keys_in[b]); });
      std::vector<KeyT> keys(count);
      std::vector<ValueT> values(count);
      for (size_t i = 0; i < count; ++i) {
        keys[i] = d_keys_in[order[i]];
        values[i] = d_values_in[order[i]];
      }
      std::copy(keys.begin(), keys.end(), d_keys_out);
      std::copy(values.begin(), values.end(), d_values_out);
    });
    return cudaSuccess;
  }
};

}  // namespace cub
