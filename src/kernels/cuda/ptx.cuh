// The raw PTX t6's kernels may use, one __device__ function per instruction: the only place with
// asm(). Under nvcc each is the instruction; in the emulated build (T6_CUDA_EMU) each calls its
// emulated twin, which follows the fragment layouts of the PTX ISA (src/cuda_emu/include/cuda_emu_ptx.h
// spells them out).
#pragma once
#include <cstdint>

#ifdef T6_CUDA_EMU
#include "cuda_emu_ptx.h"
#endif

namespace t6::ptx {

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 over the warp: d = a · b + c in fragments.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#ifdef T6_CUDA_EMU
  ::t6::cuda_emu::ptx::mma_m16n8k16_bf16(d, a, b, c);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16 over the warp: each lane gives one row address in shared memory.
__device__ __forceinline__ void ldmatrix_x4(uint32_t registers[4], const void* shared_row) {
#ifdef T6_CUDA_EMU
  ::t6::cuda_emu::ptx::ldmatrix_x4(registers, shared_row);
#else
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(registers[0]), "=r"(registers[1]), "=r"(registers[2]), "=r"(registers[3])
               : "r"(address));
#endif
}

// cp.async.cg.shared.global of 16 bytes, both addresses 16-byte aligned; complete after
// cp_async_commit_group and a cp_async_wait_group that covers it (then a barrier for other threads).
__device__ __forceinline__ void cp_async_16(void* shared_destination, const void* global_source) {
#ifdef T6_CUDA_EMU
  ::t6::cuda_emu::ptx::cp_async_16(shared_destination, global_source);
#else
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared_destination));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global_source));
#endif
}

__device__ __forceinline__ void cp_async_commit_group() {
#ifdef T6_CUDA_EMU
  ::t6::cuda_emu::ptx::cp_async_commit_group();
#else
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most `pending_groups` of this thread's committed groups are still in flight.
template <int pending_groups>
__device__ __forceinline__ void cp_async_wait_group() {
#ifdef T6_CUDA_EMU
  ::t6::cuda_emu::ptx::cp_async_wait_group(pending_groups);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending_groups));
#endif
}

}  // namespace t6::ptx
