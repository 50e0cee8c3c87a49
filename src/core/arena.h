// Arena: one allocation per kind of buffer, with every tensor's offset planned up front (llm.c).
// Owners describe their buffers once in a planning function that calls take(); the function runs
// first against a measuring arena (no memory) and then against the real one, so the layout is
// written in one place and nothing is allocated inside a training step. A device arena is one
// cudaMalloc (core/device_memory.h) planned the same way.
#pragma once
#include <cstddef>
#include <functional>

#include "core/device_memory.h"
#include "core/tensor.h"

namespace t6 {

class Arena {
 public:
  // Runs `plan` twice: once to measure, once to hand out views into a single zeroed buffer on
  // `device` (the current GPU for Device::CUDA).
  explicit Arena(const std::function<void(Arena&)>& plan, Device device = Device::CPU);
  Arena() = default;
  // The bytes `plan` takes, measured without allocating them.
  static size_t measured_bytes(const std::function<void(Arena&)>& plan);

  Tensor take(Shape shape, DType dtype = DType::F32);
  size_t bytes() const { return device_ == Device::CUDA ? device_buffer_.bytes() : buffer_.bytes(); }
  Device device() const { return device_; }

 private:
  // cuBLASLt's default minimum alignment of a matrix, so device views feed matmuls as they are.
  static constexpr size_t kAlignment = 256;
  Device device_ = Device::CPU;
  HostBuffer buffer_;
  DeviceBuffer device_buffer_;
  char* base_ = nullptr;  // null while measuring
  size_t offset_ = 0;
};

// Hands out consecutive views of one scratch tensor, for buffers that live only inside one call
// (a layer's backward). Over an empty tensor it only measures, so the same carving code sizes the
// scratch space at planning time and uses it in the step.
// Views start 256 bytes apart at least (as Arena's), whatever the element type.
class ScratchCursor {
 public:
  explicit ScratchCursor(Tensor space = {}) : space_(space) {}
  // A view of the space's element type (F32 when measuring).
  Tensor take(Shape shape);
  // A view of `dtype` (e.g. a bf16 copy inside an F32 scratch), taking the space's elements it covers.
  Tensor take(Shape shape, DType dtype);
  // In elements of the space's type (F32 when measuring).
  int64_t used() const { return used_; }

 private:
  Tensor space_;
  int64_t used_ = 0;
};

}  // namespace t6
