#include "core/device_memory.h"

#include <cstring>
#include <utility>

#include "core/cuda/cuda_check.h"

namespace t6 {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status != cudaSuccess) {
    size_t free_bytes = 0, total_bytes = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail(str("cudaMalloc of ", double(bytes) / double(1 << 20), " MiB failed (", cudaGetErrorString(status), "); the GPU has ",
             double(free_bytes) / double(1 << 20), " of ", double(total_bytes) / double(1 << 20), " MiB free"));
  }
  T6_CUDA_CHECK(cudaMemset(data_, 0, bytes));
  // cudaMemset runs on the legacy stream, which the ops' non-blocking streams do not wait for.
  T6_CUDA_CHECK(cudaDeviceSynchronize());
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

Tensor DeviceBuffer::as(Shape shape, DType dtype) const {
  T6_ASSERT(size_t(shape.numel()) * dtype_size(dtype) <= bytes_);
  return Tensor(data_, shape, dtype, Device::CUDA);
}

PinnedHostBuffer::PinnedHostBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  T6_CUDA_CHECK(cudaMallocHost(&data_, bytes));
  std::memset(data_, 0, bytes);
}

PinnedHostBuffer::~PinnedHostBuffer() {
  if (data_) cudaFreeHost(data_);
}

PinnedHostBuffer::PinnedHostBuffer(PinnedHostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

Tensor PinnedHostBuffer::as(Shape shape, DType dtype) const {
  T6_ASSERT(size_t(shape.numel()) * dtype_size(dtype) <= bytes_);
  return Tensor(data_, shape, dtype, Device::CPU);
}

void copy_tensor(Tensor dst, const Tensor& src) {
  T6_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), "copy_tensor: ", dtype_name(src.dtype()), " ",
           src.shape().to_string(), " does not fit ", dtype_name(dst.dtype()), " ", dst.shape().to_string());
  if (src.bytes() == 0) return;
  // The ops run on non-blocking streams, which cudaMemcpy's legacy stream does not wait for (and a
  // pageable host → device copy may still be in flight when it returns): synchronising the device
  // on both sides makes the copy ordered after every op before it and before every op after it.
  T6_CUDA_CHECK(cudaDeviceSynchronize());
  T6_CUDA_CHECK(cudaMemcpy(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDefault));
  T6_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace t6
