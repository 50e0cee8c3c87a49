// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU_RACES
// ctest-timeout: 300
// Race mode (the emulated GPU under ThreadSanitizer): a correct kernel runs clean, and each planted
// race is reported: a block reading shared memory without __syncthreads, and lanes that read what
// another lane wrote with only a shuffle between (the pattern of attention_forward's row_max before
// it got its __syncwarp). Each racy kernel runs in a death test: TSan ends that child with exit
// code 66 after printing the race.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cuda/dynamic_shared.cuh"
#include "kernels/cuda/launch.cuh"

namespace {

template <bool barrier>
__global__ void reverse_through_shared(float* data) {
  T6_DYNAMIC_SHARED(shared);
  float* staged = reinterpret_cast<float*>(shared);
  staged[threadIdx.x] = data[threadIdx.x];
  if (barrier) __syncthreads();
  data[threadIdx.x] = staged[blockDim.x - 1 - threadIdx.x];
}

// Every lane reads the running maximum, a shuffle reduction runs, then lane 0 updates it.
template <bool syncwarp>
__global__ void running_maximum(float* out) {
  T6_DYNAMIC_SHARED(shared);
  float* maximum = reinterpret_cast<float*>(shared);
  if (threadIdx.x == 0) *maximum = 0.0f;
  __syncwarp();
  const float old = *maximum;
  float value = float(threadIdx.x);
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  if (syncwarp) __syncwarp();
  if (threadIdx.x == 0) *maximum = fmaxf(old, value);
  __syncwarp();
  out[threadIdx.x] = *maximum;
}

void run_and_exit(void (*launch)(float*), int threads) {
  float* data = nullptr;
  if (cudaMalloc(&data, sizeof(float) * size_t(threads)) != cudaSuccess) std::exit(2);
  cudaMemset(data, 0, sizeof(float) * size_t(threads));
  launch(data);
  std::exit(cudaDeviceSynchronize() == cudaSuccess ? 0 : 3);
}

void reverse_with_barrier(float* data) { T6_LAUNCH(reverse_through_shared<true>, 1, 64, 64 * sizeof(float), 0)(data); }
void reverse_without_barrier(float* data) {
  T6_LAUNCH(reverse_through_shared<false>, 1, 64, 64 * sizeof(float), 0)(data);
}
void maximum_with_syncwarp(float* data) { T6_LAUNCH(running_maximum<true>, 1, 32, sizeof(float), 0)(data); }
void maximum_without_syncwarp(float* data) { T6_LAUNCH(running_maximum<false>, 1, 32, sizeof(float), 0)(data); }

class CudaEmuRaces : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(CudaEmuRaces, CorrectKernelsRunClean) {
  EXPECT_EXIT(run_and_exit(reverse_with_barrier, 64), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(run_and_exit(maximum_with_syncwarp, 32), ::testing::ExitedWithCode(0), "");
}

TEST_F(CudaEmuRaces, SharedMemoryReadWithoutABarrierIsARace) {
  EXPECT_EXIT(run_and_exit(reverse_without_barrier, 64), ::testing::ExitedWithCode(66),
              "ThreadSanitizer: data race.*reverse_through_shared");
}

TEST_F(CudaEmuRaces, AShuffleDoesNotOrderMemoryBetweenLanes) {
  EXPECT_EXIT(run_and_exit(maximum_without_syncwarp, 32), ::testing::ExitedWithCode(66),
              "ThreadSanitizer: data race.*running_maximum");
}

}  // namespace
