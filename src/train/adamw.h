// AdamW with torch semantics (decoupled weight decay, bias correction) over one flat fp32 range of
// parameters: the whole local buffer, or this rank's ZeRO-1 shard of it.
#pragma once
#include <cstdint>

#include "core/arena.h"
#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6 {

struct AdamWSettings {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  // The moments live on `device` (the weights' device), zero-filled.
  AdamW(int64_t numel, const AdamWSettings& settings, Device device = Device::CPU);

  // One update of params from grads (same numel as the optimizer); grad_scale is the clip factor.
  // params_bf16, when given (BF16, as many elements), receives the updated weights rounded to bf16
  // in the same pass: the CUDA backend's matmul copy (ModelWeights::padded_matmul_copy).
  void step(const Tensor& params, const Tensor& grads, float lr, float grad_scale, const Tensor& params_bf16 = {});

  int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(int64_t steps) { steps_taken_ = steps; }  // on resume
  Tensor first_moment() const { return m_; }
  Tensor second_moment() const { return v_; }
  size_t state_bytes() const { return state_.bytes(); }
  const AdamWSettings& settings() const { return settings_; }

 private:
  int64_t numel_;
  AdamWSettings settings_;
  Tensor m_, v_;  // views of state_, declared first: state_'s planning assigns them
  Arena state_;
  int64_t steps_taken_ = 0;
};

}  // namespace t6
