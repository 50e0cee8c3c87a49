// Raw device memory for the tests of CUDA code (on a GPU or the emulated one): upload/download of
// host vectors, and DeviceArray, a device copy that owns its memory. Include only where CUDA is
// built (T6_WITH_CUDA). download() does not synchronise the device: tests that check stream order
// rely on that; DeviceArray::download() synchronises first.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/tensor.h"

namespace t6::testing {

template <class T>
T* upload(const std::vector<T>& values) {
  void* device = nullptr;
  EXPECT_EQ(cudaMalloc(&device, std::max<size_t>(values.size(), 1) * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(device, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<T*>(device);
}

template <class T>
std::vector<T> download(const T* device, size_t count) {
  std::vector<T> values(count);
  EXPECT_EQ(cudaMemcpy(values.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return values;
}

// Device memory holding a copy of `values`, or `count` elements of the sentinel bytes 0xFF (NaN in
// F32 and BF16), so that an element an op forgets to write shows.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t count) : count_(count) {
    EXPECT_EQ(cudaMalloc(&data_, std::max<size_t>(count, 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemset(data_, 0xFF, count * sizeof(T)), cudaSuccess);
    // cudaMemset runs on the legacy stream, which non-blocking streams (the ops', NCCL's) do not
    // wait for: without this an op could write its output before the sentinel lands on it.
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& values) : DeviceArray(values.size()) {
    EXPECT_EQ(cudaMemcpy(data_, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return data_; }
  Tensor view(DType dtype = dtype_of<T>()) const { return Tensor(data_, {int64_t(count_)}, dtype, Device::CUDA); }
  // After every stream of the device has run.
  std::vector<T> download() const {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    return testing::download(data_, count_);
  }

 private:
  T* data_ = nullptr;
  size_t count_;
};

}  // namespace t6::testing
