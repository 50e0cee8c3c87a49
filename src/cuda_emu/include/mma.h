// nvcuda::wmma for the emulated GPU (NVIDIA's <mma.h> is empty without nvcc): the m16n16k16 shapes
// t6's kernels use, bf16 and fp16 inputs with fp32 accumulators.
//
// Adversarial by design: which (row, column) of the tile each lane's fragment element holds is
// unspecified on the GPU, so every fragment type gets its own seeded random mapping here (T6_EMU_SEED);
// code that assumes a layout gets wrong results. load/store_matrix_sync and mma_sync are warp
// collectives: all 32 lanes must arrive with the same pointer, ldm and layout, the pointer 32-byte
// aligned and ldm a multiple of 16 bytes, as the CUDA programming guide requires.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "cuda_emu_executor.h"

namespace t6::cuda_emu {

// The tile position (row * columns + column) of each lane's elements: lane l's element e sits at
// positions[l * per_lane + e]. `salt` tells fragment types apart.
const uint16_t* fragment_positions(int rows, int columns, uint64_t salt);
// Faults naming the operation unless the pointer and ldm are legal for WMMA.
void check_matrix_pointer(const char* operation, const void* pointer, unsigned ldm, size_t element_bytes);
// D = A·B + C over whole 16x16 tiles gathered from the 32 lanes, in fp32.
void multiply_tiles(float* d, const float* a, const float* b, const float* c, int m, int n, int k);

}  // namespace t6::cuda_emu

namespace nvcuda::wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
 public:
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int columns = std::is_same<Use, matrix_a>::value ? K : N;
  static constexpr int num_elements = rows * columns / 32;
  using element_type = T;
  T x[num_elements];

  // Where element e of this lane sits in the tile.
  static int position(int lane, int element) {
    static const uint16_t* const positions = ::t6::cuda_emu::fragment_positions(rows, columns, salt());
    return positions[lane * num_elements + element];
  }

 private:
  static uint64_t salt() {
    return uint64_t(std::is_same<Use, matrix_a>::value ? 1 : std::is_same<Use, matrix_b>::value ? 2 : 3) * 1000003u +
           uint64_t(sizeof(T)) * 101u + (std::is_same<Layout, col_major>::value ? 7u : 0u) + uint64_t(M * 10000 + N * 100 + K);
  }
};

template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const T& value) {
  for (T& element : f.x) element = value;
}

namespace detail {

inline float to_float(float value) { return value; }
inline float to_float(__nv_bfloat16 value) { return __bfloat162float(value); }
inline float to_float(__half value) { return __half2float(value); }
template <class T>
inline T from_float(float value) {
  if constexpr (std::is_same<T, float>::value) return value;
  else if constexpr (std::is_same<T, __nv_bfloat16>::value) return __float2bfloat16(value);
  else return __float2half(value);
}

// Every lane arrives with the same pointer, ldm and layout, or the collective faults; then each
// lane moves its own elements.
template <class Fragment, class Element>
inline void move_tile(const char* operation, Fragment& f, Element* memory, unsigned ldm, bool column_major, bool store) {
  ::t6::cuda_emu::check_matrix_pointer(operation, memory, ldm, sizeof(Element));
  ::t6::cuda_emu::warp_collective(
      {operation, 0xffffffffu, {reinterpret_cast<uintptr_t>(memory), ldm, column_major}, nullptr, nullptr});
  const int lane = ::t6::cuda_emu::lane_id();
  for (int e = 0; e < Fragment::num_elements; ++e) {
    const int position = Fragment::position(lane, e), r = position / Fragment::columns, c = position % Fragment::columns;
    Element& cell = memory[column_major ? size_t(c) * ldm + r : size_t(r) * ldm + c];
    if (store) cell = from_float<Element>(to_float(f.x[e]));
    else f.x[e] = from_float<typename Fragment::element_type>(to_float(cell));
  }
}

}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* memory, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load names its layout");
  detail::move_tile("wmma::load_matrix_sync", f, const_cast<T*>(memory), ldm, std::is_same<Layout, col_major>::value,
                    false);
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* memory, unsigned ldm, layout_t layout) {
  detail::move_tile("wmma::load_matrix_sync", f, const_cast<T*>(memory), ldm, layout == mem_col_major, false);
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* memory, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  detail::move_tile("wmma::store_matrix_sync", const_cast<fragment<accumulator, M, N, K, T>&>(f), memory, ldm,
                    layout == mem_col_major, true);
}

// D = A·B + C: the first lane to be released gathers every lane's fragments (they live on the
// lanes' own stacks, which stay valid while they are parked), multiplies in fp32 and scatters D.
template <int M, int N, int K, class In, class LayoutA, class LayoutB, class Acc>
inline void mma_sync(fragment<accumulator, M, N, K, Acc>& d, const fragment<matrix_a, M, N, K, In, LayoutA>& a,
                     const fragment<matrix_b, M, N, K, In, LayoutB>& b, const fragment<accumulator, M, N, K, Acc>& c) {
  using A = fragment<matrix_a, M, N, K, In, LayoutA>;
  using B = fragment<matrix_b, M, N, K, In, LayoutB>;
  using D = fragment<accumulator, M, N, K, Acc>;
  struct Lane {
    D* d;
    const A* a;
    const B* b;
    const D* c;
  } lane{&d, &a, &b, &c};
  ::t6::cuda_emu::warp_collective({"wmma::mma_sync", 0xffffffffu, {0, 0, 0}, &lane, [](void* const lanes[32]) {
    float tile_a[M * K], tile_b[K * N], tile_c[M * N], tile_d[M * N];
    for (int l = 0; l < 32; ++l) {
      const Lane& from = *static_cast<const Lane*>(lanes[l]);
      for (int e = 0; e < A::num_elements; ++e) tile_a[A::position(l, e)] = detail::to_float(from.a->x[e]);
      for (int e = 0; e < B::num_elements; ++e) tile_b[B::position(l, e)] = detail::to_float(from.b->x[e]);
      for (int e = 0; e < D::num_elements; ++e) tile_c[D::position(l, e)] = detail::to_float(from.c->x[e]);
    }
    ::t6::cuda_emu::multiply_tiles(tile_d, tile_a, tile_b, tile_c, M, N, K);
    for (int l = 0; l < 32; ++l) {
      const Lane& to = *static_cast<const Lane*>(lanes[l]);
      for (int e = 0; e < D::num_elements; ++e) to.d->x[e] = detail::from_float<Acc>(tile_d[D::position(l, e)]);
    }
  }});
}

}  // namespace nvcuda::wmma
