// The CPU-only build's device memory: none. The CUDA build takes core/cuda/device_memory.cpp instead.
// A buffer of zero bytes is the empty buffer, as in the CUDA build (the CPU backend's StepBuffers
// asks for no pinned bytes); only memory itself is refused.
#ifndef T6_WITH_CUDA
#include <utility>

#include "core/device_memory.h"

namespace t6 {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail(str(what, ": this t6 was built without CUDA (configure with -DT6_CUDA=ON)"));
}
}  // namespace

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes > 0) no_cuda("device memory");
}
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept { std::swap(data_, other.data_); }
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  return *this;
}
Tensor DeviceBuffer::as(Shape, DType) const { no_cuda("device memory"); }

PinnedHostBuffer::PinnedHostBuffer(size_t bytes) {
  if (bytes > 0) no_cuda("pinned host memory");
}
PinnedHostBuffer::~PinnedHostBuffer() = default;
PinnedHostBuffer::PinnedHostBuffer(PinnedHostBuffer&& other) noexcept { std::swap(data_, other.data_); }
PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  return *this;
}
Tensor PinnedHostBuffer::as(Shape, DType) const { no_cuda("pinned host memory"); }

void copy_tensor(Tensor, const Tensor&) { no_cuda("copy_tensor"); }

}  // namespace t6
#endif
