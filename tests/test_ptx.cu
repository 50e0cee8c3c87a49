// ctest-labels: gpu
// The raw PTX wrappers of src/kernels/cuda/ptx.cuh, natively under nvcc and as their emulated twins:
// one warp copies A (16x16) and Bᵀ (8x16) bf16 tiles into shared memory with cp.async, loads the
// fragments with ldmatrix.x4 and computes D = A · B + C with mma.m16n8k16. Values are small
// multiples of 1/2, so every product and sum is exact and D must equal the plain product bit for
// bit; the ldmatrix registers must follow the PTX ISA's layout; swapping two A registers must be
// caught; and reading shared memory before cp.async.wait_group must not see the copy in the emulation.
#include <gtest/gtest.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "core/bf16.h"
#include "kernels/cuda/dynamic_shared.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ptx.cuh"
#include "kernels/device.h"
#include "common/device_arrays.h"

namespace {

using t6::testing::download;
using t6::testing::upload;

constexpr int kM = 16, kN = 8, kK = 16;
constexpr size_t kSharedBytes = (kM * kK + kN * kK) * sizeof(uint16_t);

// Out: d (16x8 row-major), and every lane's four A registers as ldmatrix gave them.
template <bool swap_a_registers>
__global__ void mma_tile(const uint16_t* a, const uint16_t* b_transposed, const float* c, float* d, uint32_t* a_fragments) {
  T6_DYNAMIC_SHARED(shared);
  uint16_t* a_tile = reinterpret_cast<uint16_t*>(shared);
  uint16_t* b_tile = a_tile + kM * kK;
  const int lane = threadIdx.x;
  for (int chunk = lane; chunk < (kM * kK + kN * kK) / 8; chunk += 32) {  // 16-byte chunks of 8 bf16
    if (chunk < kM * kK / 8)
      t6::ptx::cp_async_16(a_tile + chunk * 8, a + chunk * 8);
    else
      t6::ptx::cp_async_16(b_tile + (chunk - kM * kK / 8) * 8, b_transposed + (chunk - kM * kK / 8) * 8);
  }
  t6::ptx::cp_async_commit_group();
  t6::ptx::cp_async_wait_group<0>();
  __syncwarp();
  uint32_t a_registers[4], b_registers[4];
  // A: lanes 0-15 point at rows 0-15, column 0; lanes 16-31 at the same rows, column 8.
  t6::ptx::ldmatrix_x4(a_registers, a_tile + (lane % 16) * kK + (lane / 16) * 8);
  // Bᵀ: lanes 0-7 at rows 0-7, column 0; lanes 8-15 at column 8; lanes 16-31 repeat them.
  t6::ptx::ldmatrix_x4(b_registers, b_tile + (lane % 8) * kK + ((lane / 8) % 2) * 8);
  for (int r = 0; r < 4; ++r) a_fragments[lane * 4 + r] = a_registers[r];
  if (swap_a_registers) {
    const uint32_t kept = a_registers[1];
    a_registers[1] = a_registers[2];
    a_registers[2] = kept;
  }
  const int group = lane / 4, pair = 2 * (lane % 4);
  float c_fragment[4], d_fragment[4];
  for (int i = 0; i < 4; ++i) c_fragment[i] = c[(group + (i / 2) * 8) * kN + pair + i % 2];
  t6::ptx::mma_m16n8k16_bf16(d_fragment, a_registers, b_registers, c_fragment);
  for (int i = 0; i < 4; ++i) d[(group + (i / 2) * 8) * kN + pair + i % 2] = d_fragment[i];
}


float half_step(int i, int period, int offset) { return 0.5f * float(i % period - offset); }

struct Tile {
  std::vector<uint16_t> a, b_transposed;
  std::vector<float> c, expected;
};

Tile make_tile() {
  Tile tile;
  for (int i = 0; i < kM * kK; ++i) tile.a.push_back(t6::float_to_bf16_bits(half_step(i * 5, 7, 3)));
  for (int i = 0; i < kN * kK; ++i) tile.b_transposed.push_back(t6::float_to_bf16_bits(half_step(i * 3, 9, 4)));
  for (int i = 0; i < kM * kN; ++i) tile.c.push_back(half_step(i, 5, 2));
  for (int row = 0; row < kM; ++row)
    for (int col = 0; col < kN; ++col) {
      float sum = tile.c[size_t(row * kN + col)];
      for (int k = 0; k < kK; ++k)
        sum += t6::bf16_bits_to_float(tile.a[size_t(row * kK + k)]) *
               t6::bf16_bits_to_float(tile.b_transposed[size_t(col * kK + k)]);
      tile.expected.push_back(sum);
    }
  return tile;
}

struct TileResult {
  std::vector<float> d;
  std::vector<uint32_t> a_fragments;
};

template <bool swap_a_registers>
TileResult run_tile(const Tile& tile) {
  uint16_t* a = upload(tile.a);
  uint16_t* b = upload(tile.b_transposed);
  float* c = upload(tile.c);
  float* d = upload(std::vector<float>(kM * kN, -1.0f));
  uint32_t* fragments = upload(std::vector<uint32_t>(32 * 4, 0));
  T6_LAUNCH(mma_tile<swap_a_registers>, 1, 32, kSharedBytes, nullptr)(a, b, c, d, fragments);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  TileResult result{download(d, kM * kN), download(fragments, 32 * 4)};
  for (void* buffer : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(c), static_cast<void*>(d),
                       static_cast<void*>(fragments)})
    cudaFree(buffer);
  return result;
}

class Ptx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (t6::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

}  // namespace

TEST_F(Ptx, CpAsyncLdmatrixAndMmaComputeThePlainProduct) {
  const Tile tile = make_tile();
  EXPECT_EQ(run_tile<false>(tile).d, tile.expected);
}

TEST_F(Ptx, LdmatrixRegistersFollowThePtxLayout) {
  const Tile tile = make_tile();
  const std::vector<uint32_t> fragments = run_tile<false>(tile).a_fragments;
  for (int lane = 0; lane < 32; ++lane)
    for (int matrix = 0; matrix < 4; ++matrix) {
      // Matrix j of the A recipe is rows 8·(j % 2).., columns 8·(j / 2)..; lane l holds its row l / 4,
      // columns 2(l % 4) and 2(l % 4) + 1, the lower column in the low half.
      const int row = (matrix % 2) * 8 + lane / 4, col = (matrix / 2) * 8 + 2 * (lane % 4);
      const uint32_t expected = uint32_t(tile.a[size_t(row * kK + col)]) | (uint32_t(tile.a[size_t(row * kK + col + 1)]) << 16);
      EXPECT_EQ(fragments[size_t(lane * 4 + matrix)], expected) << "lane " << lane << " register " << matrix;
    }
}

TEST_F(Ptx, SwappingTwoARegistersIsCaught) {
  const Tile tile = make_tile();
  EXPECT_NE(run_tile<true>(tile).d, tile.expected);
}

#ifdef T6_CUDA_EMU
namespace {

// Reads its shared destination before waiting for the copy: the copy must not have happened yet.
__global__ void read_before_wait(const uint16_t* source, uint16_t* seen) {
  T6_DYNAMIC_SHARED(shared);
  uint16_t* tile = reinterpret_cast<uint16_t*>(shared);
  tile[threadIdx.x * 8] = 0;
  t6::ptx::cp_async_16(tile + threadIdx.x * 8, source + threadIdx.x * 8);
  t6::ptx::cp_async_commit_group();
  seen[threadIdx.x * 2] = tile[threadIdx.x * 8];
  t6::ptx::cp_async_wait_group<0>();
  seen[threadIdx.x * 2 + 1] = tile[threadIdx.x * 8];
}

}  // namespace

// On a GPU the copy may or may not have landed before the wait; the emulation always shows the bug.
TEST_F(Ptx, SharedMemoryReadBeforeTheWaitDoesNotSeeTheCopy) {
  std::vector<uint16_t> source(32 * 8);
  for (size_t i = 0; i < source.size(); ++i) source[i] = uint16_t(1000 + i);
  uint16_t* device_source = upload(source);
  uint16_t* seen = upload(std::vector<uint16_t>(64, 0xFFFF));
  T6_LAUNCH(read_before_wait, 1, 32, 32 * 16, nullptr)(device_source, seen);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> values = download(seen, 64);
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(values[size_t(lane * 2)], 0) << "lane " << lane << " saw the copy before waiting for it";
    EXPECT_EQ(values[size_t(lane * 2 + 1)], source[size_t(lane * 8)]) << "lane " << lane;
  }
  cudaFree(device_source);
  cudaFree(seen);
}
#endif
