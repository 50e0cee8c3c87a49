// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// The emulated cub::DeviceRadixSort::SortPairs (src/cuda_emu/include/cub): the size query, then a
// stable sort by key on a stream against std::stable_sort, negative keys first as in CUB, and a
// sort by a bit range.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <numeric>
#include <vector>
#include "common/device_arrays.h"

namespace {

using t6::testing::download;
using t6::testing::upload;


struct Sorted {
  std::vector<int32_t> keys, values;
};

// Sorts (keys, positions) on a non-blocking stream, as embedding_backward does.
Sorted sort_pairs(const std::vector<int32_t>& keys, int begin_bit, int end_bit) {
  const int n = int(keys.size());
  std::vector<int32_t> positions(keys.size());
  std::iota(positions.begin(), positions.end(), 0);
  int32_t* keys_in = upload(keys);
  int32_t* values_in = upload(positions);
  int32_t* keys_out = upload(std::vector<int32_t>(keys.size(), -1));
  int32_t* values_out = upload(std::vector<int32_t>(keys.size(), -1));
  size_t temp_bytes = 0;
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, values_in, values_out, n), cudaSuccess);
  void* temp = nullptr;
  EXPECT_EQ(cudaMalloc(&temp, temp_bytes), cudaSuccess);
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, values_out, n, begin_bit,
                                            end_bit, stream),
            cudaSuccess);
  EXPECT_EQ(download(keys_out, keys.size()), std::vector<int32_t>(keys.size(), -1)) << "queued until synchronised";
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  Sorted sorted{download(keys_out, keys.size()), download(values_out, keys.size())};
  cudaStreamDestroy(stream);
  for (void* buffer : {static_cast<void*>(keys_in), static_cast<void*>(values_in), static_cast<void*>(keys_out),
                       static_cast<void*>(values_out), temp})
    cudaFree(buffer);
  return sorted;
}

template <class Radix>
Sorted reference(const std::vector<int32_t>& keys, Radix radix) {
  std::vector<int32_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return radix(keys[size_t(a)]) < radix(keys[size_t(b)]); });
  Sorted sorted;
  for (int32_t i : order) {
    sorted.keys.push_back(keys[size_t(i)]);
    sorted.values.push_back(i);
  }
  return sorted;
}

const std::vector<int32_t> kKeys = {7, -3, 96, 7, 0, -3, 2147483647, -2147483647 - 1, 96, 5, 7, 0, 33, -1};

}  // namespace

TEST(CudaEmuCub, SortPairsIsAStableSortByKeyWithNegativeKeysFirst) {
  const Sorted sorted = sort_pairs(kKeys, 0, 32);
  const Sorted expected = reference(kKeys, [](int32_t key) { return int64_t(key); });
  EXPECT_EQ(sorted.keys, expected.keys);
  EXPECT_EQ(sorted.values, expected.values) << "equal keys keep their input order";
}

TEST(CudaEmuCub, SortPairsSortsByTheGivenBitRange) {
  const Sorted sorted = sort_pairs(kKeys, 2, 6);
  const Sorted expected = reference(kKeys, [](int32_t key) { return (uint32_t(key) >> 2) & 0xFu; });
  EXPECT_EQ(sorted.keys, expected.keys);
  EXPECT_EQ(sorted.values, expected.values);
}

TEST(CudaEmuCub, SortPairsRefusesTooLittleTemporaryStorage) {
  int32_t* keys = upload(kKeys);
  size_t too_little = 0;
  char temp = 0;
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(&temp, too_little, keys, keys, keys, keys, int(kKeys.size())),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  cudaFree(keys);
}

