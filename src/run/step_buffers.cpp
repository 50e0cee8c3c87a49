#include "run/step_buffers.h"

#include "kernels/ops.h"

namespace t6 {

namespace {
constexpr int64_t kScalars = 3;  // the loss, then the gradient statistics
// Host bytes for the batch (2 · tokens I32) then the scalars (kScalars F64), 8-byte aligned.
size_t host_bytes(int64_t tokens) {
  return size_t((2 * tokens + 1) / 2 * 2) * sizeof(int32_t) + kScalars * sizeof(double);
}
}  // namespace

StepBuffers::StepBuffers(Device device, int64_t tokens)
    : device_(device),
      tokens_(tokens),
      pinned_(device == Device::CUDA ? host_bytes(tokens) : 0),
      host_memory_(device == Device::CUDA ? 0 : (host_bytes(tokens) + 7) / 8),
      device_arena_(
          [&](Arena& arena) {
            if (device == Device::CPU) return;
            batch_ = arena.take({2 * tokens}, DType::I32);
            scalars_ = arena.take({kScalars}, DType::F64);
          },
          device) {
  char* base = device == Device::CUDA ? static_cast<char*>(pinned_.data()) : reinterpret_cast<char*>(host_memory_.data());
  host_ = Tensor(base, {2 * tokens}, DType::I32);
  host_scalars_ = Tensor(base + host_bytes(tokens) - kScalars * sizeof(double), {kScalars}, DType::F64);
  if (device == Device::CPU) batch_ = host_, scalars_ = host_scalars_;
}

void StepBuffers::upload() {
  if (device_ != Device::CPU) ops::copy(batch_, host_);
}

Tensor StepBuffers::inputs(int64_t first, int64_t rows, int64_t count) const {
  return batch_.rows(first, first + count).view({rows, count / rows});
}

Tensor StepBuffers::targets(int64_t first, int64_t rows, int64_t count) const {
  return batch_.rows(tokens_ + first, tokens_ + first + count).view({rows, count / rows});
}

StepBuffers::Scalars StepBuffers::read_scalars() {
  if (device_ != Device::CPU) {
    ops::copy(host_scalars_, scalars_);
    ops::wait_for_ops(device_);
  }
  const double* values = host_scalars_.data<double>();
  return {values[0], values[1], values[2]};
}

}  // namespace t6
