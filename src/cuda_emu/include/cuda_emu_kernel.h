// The kernel side of the emulated GPU, included ahead of everything else in every .cu file of the
// emulated build (cuda_emu.cmake): the CUDA qualifiers, the built-in variables, __syncthreads, the
// warp intrinsics and the device math t6's kernels use, on top of NVIDIA's own host headers.
#pragma once

// Before any NVIDIA header: without nvcc, host_defines.h would define these as nothing, and a
// __shared__ array would silently become a per-thread local. Blocks run one after another on one
// host thread, so a thread_local is exactly one copy per block.
#define __global__
#define __device__
#define __host__
#define __shared__ thread_local
#define __forceinline__ inline
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_emu_executor.h"

#define threadIdx (::t6::cuda_emu::builtins().thread_index)
#define blockIdx (::t6::cuda_emu::builtins().block_index)
#define blockDim (::t6::cuda_emu::builtins().block_dim)
#define gridDim (::t6::cuda_emu::builtins().grid_dim)
#define warpSize 32

inline void __syncthreads() { ::t6::cuda_emu::sync_threads(); }

namespace t6::cuda_emu {

enum class ShuffleKind { Index, Xor, Down, Up };
[[noreturn]] void throw_shuffle_source_outside_mask(int lane, int source);
unsigned vote(const char* operation, unsigned mask, bool predicate);

// The lane whose value lane `id` reads; its own outside its `width`-lane segment, as on the GPU.
inline int shuffle_source(ShuffleKind kind, int id, int argument, int width) {
  const int segment = id / width * width;
  int source = id;
  switch (kind) {
    case ShuffleKind::Index: source = segment + argument % width; break;
    case ShuffleKind::Xor: source = id ^ argument; break;
    case ShuffleKind::Down: source = id + argument; break;
    case ShuffleKind::Up: source = id - argument; break;
  }
  return source >= segment && source < segment + width ? source : id;
}

// Moves values of up to 8 bytes between the lanes of a warp. A source lane outside the mask is
// undefined on the GPU, so a fault here.
template <class T>
T shuffle(const char* operation, ShuffleKind kind, unsigned mask, T value, int argument, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move up to 8 bytes");
  struct Lane {
    uint64_t bits;
    int source;
  } lane{0, shuffle_source(kind, lane_id(), argument, width)};
  std::memcpy(&lane.bits, &value, sizeof(T));
  warp_collective({operation, mask, {uint64_t(width), 0, 0}, &lane, [](void* const lanes[32]) {
                     uint64_t sent[32] = {};
                     for (int l = 0; l < 32; ++l)
                       if (lanes[l]) sent[l] = static_cast<Lane*>(lanes[l])->bits;
                     for (int l = 0; l < 32; ++l) {
                       if (!lanes[l]) continue;
                       Lane& receiver = *static_cast<Lane*>(lanes[l]);
                       if (!lanes[receiver.source]) throw_shuffle_source_outside_mask(l, receiver.source);
                       receiver.bits = sent[receiver.source];
                     }
                   }});
  T result;
  std::memcpy(&result, &lane.bits, sizeof(T));
  return result;
}

}  // namespace t6::cuda_emu

template <class T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = 32) {
  return ::t6::cuda_emu::shuffle("__shfl_sync", ::t6::cuda_emu::ShuffleKind::Index, mask, value, source_lane, width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  return ::t6::cuda_emu::shuffle("__shfl_xor_sync", ::t6::cuda_emu::ShuffleKind::Xor, mask, value, lane_mask, width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return ::t6::cuda_emu::shuffle("__shfl_down_sync", ::t6::cuda_emu::ShuffleKind::Down, mask, value, int(delta), width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return ::t6::cuda_emu::shuffle("__shfl_up_sync", ::t6::cuda_emu::ShuffleKind::Up, mask, value, int(delta), width);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::t6::cuda_emu::warp_collective({"__syncwarp", mask, {0, 0, 0}, nullptr, nullptr, true});
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return ::t6::cuda_emu::vote("__ballot_sync", mask, predicate != 0);
}
inline int __any_sync(unsigned mask, int predicate) { return ::t6::cuda_emu::vote("__any_sync", mask, predicate != 0) != 0; }
inline int __all_sync(unsigned mask, int predicate) {
  return ::t6::cuda_emu::vote("__all_sync", mask, predicate != 0) == mask;
}

// Device math as the host computes it. The GPU's fast approximations (__expf, rsqrtf) differ in
// the last bits: tests compare with stated tolerances, never bit for bit against a GPU.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float x, float y) { return x / y; }
template <class T>
inline T __ldg(const T* address) { return *address; }
// nvcc's device min/max take mixed integer widths; std::min would not.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// The C form exists without nvcc; kernels pass the function itself, as under nvcc.
template <class... Parameters>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Parameters...), cudaFuncAttribute attribute, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}
