#include "core/arena.h"

namespace t6 {

Arena::Arena(const std::function<void(Arena&)>& plan) {
  plan(*this);
  buffer_ = HostBuffer(offset_);
  base_ = static_cast<char*>(buffer_.data());
  offset_ = 0;
  plan(*this);
}

Tensor Arena::take(Shape shape, DType dtype) {
  const size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
  const size_t start = offset_;
  offset_ += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  T6_ASSERT(!base_ || offset_ <= buffer_.bytes() + kAlignment);
  // While measuring, hand out a non-null dummy pointer so callers cannot mistake it for empty.
  return Tensor(base_ ? base_ + start : reinterpret_cast<char*>(kAlignment), shape, dtype);
}

}  // namespace t6
