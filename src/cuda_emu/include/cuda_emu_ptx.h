// The emulated twins of the raw PTX instructions behind src/kernels/cuda/ptx.cuh, following the
// fragment layouts of the PTX ISA. The *_lanes functions are the instructions proper, over the 32
// lanes' registers indexed by lane; the others are what one CUDA thread calls, a warp collective
// that gathers the lanes' registers, runs the instruction once and hands each lane its result.
#pragma once
#include <cstdint>

namespace t6::cuda_emu::ptx {

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D (16x8) = A (16x16) · B (16x8) + C, with
// lane l (group g = l / 4, t = l % 4) holding, two bf16 per register, low half first:
//   A: a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] = A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9]
//   B: b[0] = B[2t, 2t+1][g], b[1] = B[2t+8, 2t+9][g]
//   C, D: c[0], c[1] = C[g][2t, 2t+1]; c[2], c[3] = C[g+8][2t, 2t+1]
// Products are exact in fp32; the sum runs in fp32 in k order.
void mma_m16n8k16_bf16_lanes(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4], float d[32][4]);

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: lanes 8j..8j+7 give the addresses of the 8 rows (8 b16
// each, 16-byte aligned) of matrix j; register j of lane l receives row l / 4, columns 2(l % 4) and
// 2(l % 4) + 1 of matrix j, low half first.
void ldmatrix_x4_lanes(const void* const row_addresses[32], uint32_t registers[32][4]);

void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
void ldmatrix_x4(uint32_t registers[4], const void* row_address);

// cp.async.cg.shared.global, 16 bytes: the copy is only queued; it happens when a later
// cp.async.wait_group leaves its group complete, so shared memory read too early holds what was there
// before (NaN in poisoned dynamic shared memory).
void cp_async_16(void* shared_destination, const void* global_source);
void cp_async_commit_group();
void cp_async_wait_group(int pending_groups);

}  // namespace t6::cuda_emu::ptx
