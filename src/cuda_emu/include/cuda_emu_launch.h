// Kernel launches on the emulated GPU (behind T6_LAUNCH in kernels/cuda/launch.cuh): the arguments
// are copied at the launch, as CUDA copies them, the configuration is checked as the GPU checks it,
// and the grid is queued on the stream to run at the next synchronisation point.
#pragma once
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_emu_executor.h"

namespace t6::cuda_emu {

template <class... Parameters>
class KernelLaunch {
 public:
  KernelLaunch(void (*kernel)(Parameters...), const char* name, dim3 grid, dim3 block, size_t shared_bytes,
               cudaStream_t stream)
      : kernel_(kernel), shape_{name, grid, block, shared_bytes}, stream_(stream) {}

  template <class... Arguments>
  void operator()(Arguments&&... arguments) const {
    static_assert(sizeof...(Arguments) == sizeof...(Parameters), "a kernel launch with the wrong number of arguments");
    std::tuple<std::decay_t<Parameters>...> values(std::forward<Arguments>(arguments)...);
    launch_grid(shape_, reinterpret_cast<const void*>(kernel_), stream_,
                [kernel = kernel_, values] { std::apply(kernel, values); });
  }

 private:
  void (*kernel_)(Parameters...);
  LaunchShape shape_;
  cudaStream_t stream_;
};

template <class... Parameters>
KernelLaunch(void (*)(Parameters...), const char*, dim3, dim3, size_t, cudaStream_t) -> KernelLaunch<Parameters...>;

}  // namespace t6::cuda_emu
