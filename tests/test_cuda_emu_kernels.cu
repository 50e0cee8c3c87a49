// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// ctest-timeout: 120
// The emulated GPU's kernel executor catches what a GPU would punish and a CPU would forgive: each
// test runs a correct kernel and the same kernel with one planted bug (a missing barrier, an early
// return, half a warp in a shuffle, a bad WMMA ldm, too much shared memory, an assumed fragment
// layout), and checks that the correct one is exact and the planted bug is caught, not hung.
#include <gtest/gtest.h>
#include <mma.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/device_arrays.h"
#include "cuda_emu_schedule.h"
#include "kernels/cuda/dynamic_shared.cuh"
#include "kernels/cuda/launch.cuh"

namespace {

using t6::testing::DeviceArray;

constexpr int kTile = 16;

// C (n x n) = A · B with 16 x 16 tiles staged in dynamic shared memory; `barriers` false drops both
// __syncthreads, the classic tiled-kernel bug.
template <bool barriers>
__global__ void tiled_matmul(const float* a, const float* b, float* c, int n) {
  T6_DYNAMIC_SHARED(shared);
  float* a_tile = reinterpret_cast<float*>(shared);
  float* b_tile = a_tile + kTile * kTile;
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float sum = 0;
  for (int k0 = 0; k0 < n; k0 += kTile) {
    a_tile[threadIdx.y * kTile + threadIdx.x] = a[row * n + k0 + threadIdx.x];
    b_tile[threadIdx.y * kTile + threadIdx.x] = b[(k0 + threadIdx.y) * n + col];
    if (barriers) __syncthreads();
    for (int k = 0; k < kTile; ++k) sum += a_tile[threadIdx.y * kTile + k] * b_tile[k * kTile + threadIdx.x];
    if (barriers) __syncthreads();
  }
  c[row * n + col] = sum;
}

// Each lane publishes a value in shared memory and reads its neighbour's; `synced` false drops the
// __syncwarp between, which the GPU's independent thread scheduling (sm_70+) does not forgive.
template <bool synced>
__global__ void neighbour_exchange(float* out) {
  T6_DYNAMIC_SHARED(shared);
  float* values = reinterpret_cast<float*>(shared);
  values[threadIdx.x] = float(threadIdx.x * threadIdx.x);
  if (synced) __syncwarp();
  out[threadIdx.x] = values[(threadIdx.x + 1) % 32];
}

__global__ void early_return_before_barrier(float* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void half_warp_shuffle(float* out) {
  float value = float(threadIdx.x);
  if (threadIdx.x < 16) value = __shfl_xor_sync(0xffffffffu, value, 1);
  out[threadIdx.x] = value;
}

// Every warp intrinsic t6 may use, each lane writing what it received.
__global__ void warp_intrinsics(int* out) {
  const int lane = threadIdx.x;
  out[0 * 32 + lane] = __shfl_sync(0xffffffffu, lane * 10, 7);
  out[1 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane * 10, 5);
  out[2 * 32 + lane] = __shfl_down_sync(0xffffffffu, lane * 10, 3);
  out[3 * 32 + lane] = __shfl_up_sync(0xffffffffu, lane * 10, 3);
  out[4 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane * 10, 1, 8);  // within 8-lane segments
  out[5 * 32 + lane] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[6 * 32 + lane] = __any_sync(0xffffffffu, lane == 31);
  out[7 * 32 + lane] = __all_sync(0xffffffffu, lane < 31);
  if (lane < 16) out[8 * 32 + lane] = __shfl_down_sync(0x0000ffffu, lane * 10, 1, 16);
  else out[8 * 32 + lane] = -1;
}

namespace wmma = nvcuda::wmma;

// One 16 x 16 x 16 product on the tensor cores. `ldm` is the rows' stride of a and b.
__global__ void wmma_product(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c, unsigned ldm) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a_fragment;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b_fragment;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c_fragment;
  wmma::fill_fragment(c_fragment, 0.0f);
  wmma::load_matrix_sync(a_fragment, a, ldm);
  wmma::load_matrix_sync(b_fragment, b, ldm);
  wmma::mma_sync(c_fragment, a_fragment, b_fragment, c_fragment);
  wmma::store_matrix_sync(c, c_fragment, 16, wmma::mem_row_major);
}

// The bug WMMA's unspecified layout invites: storing the accumulator's elements by hand as if lane l
// held row l / 2, columns 8 (l % 2) .. 8 (l % 2) + 7.
__global__ void wmma_assumed_layout(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a_fragment;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b_fragment;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c_fragment;
  wmma::fill_fragment(c_fragment, 0.0f);
  wmma::load_matrix_sync(a_fragment, a, 16);
  wmma::load_matrix_sync(b_fragment, b, 16);
  wmma::mma_sync(c_fragment, a_fragment, b_fragment, c_fragment);
  const int lane = threadIdx.x;
  for (int e = 0; e < c_fragment.num_elements; ++e) c[(lane / 2) * 16 + (lane % 2) * 8 + e] = c_fragment.x[e];
}

__global__ void touch_shared(float* out) {
  T6_DYNAMIC_SHARED(shared);
  reinterpret_cast<float*>(shared)[threadIdx.x] = 1.0f;
  out[threadIdx.x] = reinterpret_cast<float*>(shared)[threadIdx.x];
}


// The message of the fault the next synchronisation reports; the device is reset afterwards, as a
// real context would have to be.
std::string fault_of_next_synchronisation() {
  const cudaError_t error = cudaDeviceSynchronize();
  std::string message = error == cudaSuccess ? "no fault" : cudaGetErrorString(error);
  cudaDeviceReset();
  return message;
}

std::vector<float> tiled_product(bool barriers, int n) {
  std::vector<float> a(size_t(n * n)), b(size_t(n * n));
  for (int i = 0; i < n * n; ++i) {
    a[size_t(i)] = float(i % 7) - 3.0f;
    b[size_t(i)] = float(i % 5) - 2.0f;
  }
  DeviceArray<float> da(a), db(b), dc(size_t(n * n));
  const dim3 grid(unsigned(n / kTile), unsigned(n / kTile)), block(kTile, kTile);
  const size_t shared_bytes = 2 * kTile * kTile * sizeof(float);
  if (barriers) T6_LAUNCH(tiled_matmul<true>, grid, block, shared_bytes, 0)(da.get(), db.get(), dc.get(), n);
  else T6_LAUNCH(tiled_matmul<false>, grid, block, shared_bytes, 0)(da.get(), db.get(), dc.get(), n);
  std::vector<float> c = dc.download(), expected(size_t(n * n), 0.0f);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) expected[size_t(i * n + j)] += a[size_t(i * n + k)] * b[size_t(k * n + j)];
  for (int i = 0; i < n * n; ++i) c[size_t(i)] -= expected[size_t(i)];  // small integers: exact
  return c;
}

bool all_zero(const std::vector<float>& values) {
  for (float value : values)
    if (!(value == 0.0f)) return false;  // NaN is not zero
  return true;
}

using t6::cuda_emu::ScheduleOrder;

class EveryOrder : public ::testing::TestWithParam<ScheduleOrder> {
 protected:
  void SetUp() override { t6::cuda_emu::set_schedule_order(GetParam()); }
  void TearDown() override { t6::cuda_emu::set_schedule_order(ScheduleOrder::Random); }
};

TEST_P(EveryOrder, TiledKernelIsExactWithItsBarriersAndWrongWithout) {
  EXPECT_TRUE(all_zero(tiled_product(true, 48)));
  EXPECT_FALSE(all_zero(tiled_product(false, 48)));
}

TEST_P(EveryOrder, LanesSeeEachOthersWritesOnlyAfterSyncwarp) {
  DeviceArray<float> out(32);
  T6_LAUNCH(neighbour_exchange<true>, 1, 32, 32 * sizeof(float), 0)(out.get());
  const std::vector<float> synced = out.download();
  for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(synced[size_t(lane)], float(((lane + 1) % 32) * ((lane + 1) % 32)));
  T6_LAUNCH(neighbour_exchange<false>, 1, 32, 32 * sizeof(float), 0)(out.get());
  const std::vector<float> unsynced = out.download();
  int stale = 0;  // lanes that read their neighbour's slot before it was written: poisoned NaN
  for (float value : unsynced) stale += std::isnan(value);
  EXPECT_GT(stale, 0);
}

INSTANTIATE_TEST_SUITE_P(CudaEmu, EveryOrder,
                         ::testing::Values(ScheduleOrder::Forward, ScheduleOrder::Reverse, ScheduleOrder::Random));

TEST(CudaEmu, EarlyReturnBeforeABarrierIsReportedNotHung) {
  DeviceArray<float> out(32);
  T6_LAUNCH(early_return_before_barrier, 1, 32, 0, 0)(out.get());
  const std::string message = fault_of_next_synchronisation();
  EXPECT_NE(message.find("kernel early_return_before_barrier, block (0,0,0): deadlock"), std::string::npos) << message;
  EXPECT_NE(message.find("threads 0-15 wait at __syncthreads"), std::string::npos) << message;
  EXPECT_NE(message.find("threads 16-31 returned"), std::string::npos) << message;
}

TEST(CudaEmu, HalfAWarpInAFullMaskShuffleIsReported) {
  DeviceArray<float> out(32);
  T6_LAUNCH(half_warp_shuffle, 1, 32, 0, 0)(out.get());
  const std::string message = fault_of_next_synchronisation();
  EXPECT_NE(message.find("threads 0-15 wait at __shfl_xor_sync (mask 0xffffffff); threads 16-31 returned"),
            std::string::npos)
      << message;
}

TEST(CudaEmu, AFullMaskShuffleInABlockOfHalfAWarpIsReported) {
  DeviceArray<float> out(16);
  T6_LAUNCH(half_warp_shuffle, 1, 16, 0, 0)(out.get());
  const std::string message = fault_of_next_synchronisation();
  EXPECT_NE(message.find("which names lane 16 of a warp that has only 16 threads"), std::string::npos) << message;
}

TEST(CudaEmu, WarpIntrinsicsDeliverWhatTheProgrammingGuideSays) {
  DeviceArray<int> out(9 * 32);
  T6_LAUNCH(warp_intrinsics, 1, 32, 0, 0)(out.get());
  const std::vector<int> got = out.download();
  unsigned ballot = 0;
  for (int lane = 0; lane < 32; lane += 3) ballot |= 1u << lane;
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(got[size_t(0 * 32 + lane)], 70);
    EXPECT_EQ(got[size_t(1 * 32 + lane)], (lane ^ 5) * 10);
    EXPECT_EQ(got[size_t(2 * 32 + lane)], (lane + 3 < 32 ? lane + 3 : lane) * 10);
    EXPECT_EQ(got[size_t(3 * 32 + lane)], (lane >= 3 ? lane - 3 : lane) * 10);
    EXPECT_EQ(got[size_t(4 * 32 + lane)], (lane ^ 1) * 10);
    EXPECT_EQ(unsigned(got[size_t(5 * 32 + lane)]), ballot);
    EXPECT_EQ(got[size_t(6 * 32 + lane)], 1);
    EXPECT_EQ(got[size_t(7 * 32 + lane)], 0);
    EXPECT_EQ(got[size_t(8 * 32 + lane)], lane < 16 ? (lane + 1 < 16 ? lane + 1 : lane) * 10 : -1);
  }
}

std::vector<__nv_bfloat16> bf16_values(int count, int seed) {
  std::vector<__nv_bfloat16> values(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) values[size_t(i)] = __float2bfloat16(float((i * seed) % 11) / 4.0f - 1.25f);
  return values;
}

std::vector<float> reference_product(const std::vector<__nv_bfloat16>& a, const std::vector<__nv_bfloat16>& b,
                                     int ldm) {
  std::vector<float> c(256, 0.0f);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j)
      for (int k = 0; k < 16; ++k)
        c[size_t(i * 16 + j)] += __bfloat162float(a[size_t(i * ldm + k)]) * __bfloat162float(b[size_t(k * ldm + j)]);
  return c;
}

TEST(CudaEmu, WmmaProductIsExactAndAnAssumedFragmentLayoutIsNot) {
  const int ldm = 24;  // a row stride wider than the tile, a multiple of 8 bf16
  const std::vector<__nv_bfloat16> a = bf16_values(16 * ldm, 3), b = bf16_values(16 * ldm, 7);
  const std::vector<float> expected = reference_product(a, b, ldm);
  DeviceArray<__nv_bfloat16> da(a), db(b);
  DeviceArray<float> c(256);
  T6_LAUNCH(wmma_product, 1, 32, 0, 0)(da.get(), db.get(), c.get(), unsigned(ldm));
  const std::vector<float> product = c.download();
  for (int i = 0; i < 256; ++i) EXPECT_EQ(product[size_t(i)], expected[size_t(i)]) << i;  // quarters: exact

  const std::vector<__nv_bfloat16> a16 = bf16_values(256, 3), b16 = bf16_values(256, 7);
  const std::vector<float> expected16 = reference_product(a16, b16, 16);
  DeviceArray<__nv_bfloat16> da16(a16), db16(b16);
  T6_LAUNCH(wmma_assumed_layout, 1, 32, 0, 0)(da16.get(), db16.get(), c.get());
  const std::vector<float> assumed = c.download();
  int misplaced = 0;
  for (int i = 0; i < 256; ++i) misplaced += assumed[size_t(i)] != expected16[size_t(i)];
  EXPECT_GT(misplaced, 128);
}

TEST(CudaEmu, WmmaLoadWithABadLdmIsReported) {
  const std::vector<__nv_bfloat16> a = bf16_values(16 * 24, 3);
  DeviceArray<__nv_bfloat16> da(a);
  DeviceArray<float> c(256);
  T6_LAUNCH(wmma_product, 1, 32, 0, 0)(da.get(), da.get(), c.get(), 12u);  // 24 bytes: not a multiple of 16
  const std::string message = fault_of_next_synchronisation();
  EXPECT_NE(message.find("kernel wmma_product"), std::string::npos) << message;
  EXPECT_NE(message.find("wmma::load_matrix_sync: ldm 12 is not a multiple of 8 elements"), std::string::npos)
      << message;
}

TEST(CudaEmu, DynamicSharedMemoryAbove48KiBNeedsTheAttribute) {
  DeviceArray<float> out(32);
  const size_t bytes = 49 << 10;
  T6_LAUNCH(touch_shared, 1, 32, bytes, 0)(out.get());
  const cudaError_t refused = cudaGetLastError();
  EXPECT_EQ(refused, cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(refused)).find("kernel touch_shared refused: 50176 bytes of dynamic shared"),
            std::string::npos)
      << cudaGetErrorString(refused);
  ASSERT_EQ(cudaFuncSetAttribute(touch_shared, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), cudaSuccess);
  T6_LAUNCH(touch_shared, 1, 32, bytes, 0)(out.get());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  for (float value : out.download()) EXPECT_EQ(value, 1.0f);
}

TEST(CudaEmu, LaunchesBeyondTheDevicesLimitsAreRefused) {
  DeviceArray<float> out(32);
  T6_LAUNCH(touch_shared, 1, 2048, 0, 0)(out.get());
  cudaError_t refused = cudaGetLastError();
  EXPECT_EQ(refused, cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(refused)).find("2048 threads per block"), std::string::npos);
  T6_LAUNCH(touch_shared, dim3(1, 70000), 32, 0, 0)(out.get());
  refused = cudaGetLastError();
  EXPECT_EQ(refused, cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(refused)).find("grid 1x70000x1"), std::string::npos);
}

TEST(CudaEmuDeathTest, AnUnknownScheduleOrderStopsTheRunWithOneLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child reads T6_EMU_ORDER afresh
  EXPECT_EXIT(
      {
        setenv("T6_EMU_ORDER", "sideways", 1);
        DeviceArray<float> out(32);
        T6_LAUNCH(touch_shared, 1, 32, 0, 0)(out.get());
        out.download();
      },
      ::testing::ExitedWithCode(2), "T6_EMU_ORDER='sideways' is not forward, reverse or random");
}

}  // namespace
