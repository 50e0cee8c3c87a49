#include "core/arena.h"

namespace t6 {

Arena::Arena(const std::function<void(Arena&)>& plan, Device device) : device_(device) {
  plan(*this);
  if (device == Device::CUDA) {
    device_buffer_ = DeviceBuffer(offset_);
    base_ = static_cast<char*>(device_buffer_.data());
  } else {
    buffer_ = HostBuffer(offset_);
    base_ = static_cast<char*>(buffer_.data());
  }
  offset_ = 0;
  plan(*this);
}

size_t Arena::measured_bytes(const std::function<void(Arena&)>& plan) {
  Arena measuring;
  plan(measuring);
  return measuring.offset_;
}

Tensor Arena::take(Shape shape, DType dtype) {
  const size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
  const size_t start = offset_;
  offset_ += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  T6_ASSERT(!base_ || offset_ <= this->bytes() + kAlignment);
  // While measuring, hand out a non-null dummy pointer so callers cannot mistake it for empty.
  return Tensor(base_ ? base_ + start : reinterpret_cast<char*>(kAlignment), shape, dtype, device_);
}

Tensor ScratchCursor::take(Shape shape) { return take(shape, space_.empty() ? DType::F32 : space_.dtype()); }

Tensor ScratchCursor::take(Shape shape, DType dtype) {
  const int64_t element_bytes = int64_t(dtype_size(space_.empty() ? DType::F32 : space_.dtype()));
  const int64_t elements = (shape.numel() * int64_t(dtype_size(dtype)) + element_bytes - 1) / element_bytes;
  const int64_t start = used_;
  used_ += (elements + 63) / 64 * 64;  // 256-byte aligned views in an fp32 space (cuBLASLt's default)
  if (space_.empty()) return Tensor(reinterpret_cast<char*>(256), shape, dtype);
  T6_ASSERT(used_ <= space_.numel());
  return Tensor(static_cast<char*>(space_.raw()) + start * element_bytes, shape, dtype, space_.device());
}

}  // namespace t6
