// Memory for the CUDA backend: DeviceBuffer (cudaMalloc, zeroed; never managed memory, which can
// hang a GPU when over-asked), PinnedHostBuffer (page-locked host memory, so host → device copies of
// batches run asynchronously), and copies between host and device tensors. In a build without
// CUDA, constructing either buffer or copying throws an Error saying so.
#pragma once
#include <cstddef>

#include "core/tensor.h"

namespace t6 {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);  // on the current device, zero-filled
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Tensor as(Shape shape, DType dtype) const;  // a Device::CUDA view

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class PinnedHostBuffer {
 public:
  PinnedHostBuffer() = default;
  explicit PinnedHostBuffer(size_t bytes);  // zero-filled
  ~PinnedHostBuffer();
  PinnedHostBuffer(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer& operator=(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Tensor as(Shape shape, DType dtype) const;  // a Device::CPU view

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// dst ← src, byte for byte (same dtype and element count), in either direction or device to device.
// Synchronous and ordered with all work on the device (it synchronises the device before and
// after): for setup, checkpoints and tests. Steps stage batches through a PinnedHostBuffer and copy
// on the compute stream instead.
void copy_tensor(Tensor dst, const Tensor& src);

}  // namespace t6
