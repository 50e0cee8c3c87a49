// AdamW with torch semantics (decoupled weight decay, bias correction) over one flat fp32 range of
// parameters: the whole local buffer, or this rank's ZeRO-1 shard of it.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6 {

struct AdamWSettings {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(int64_t numel, const AdamWSettings& settings);

  // One update of params from grads (same numel as the optimizer); grad_scale is the clip factor.
  void step(const Tensor& params, const Tensor& grads, float lr, float grad_scale);

  int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(int64_t steps) { steps_taken_ = steps; }  // on resume
  Tensor first_moment() const { return m_.as({numel_}, DType::F32); }
  Tensor second_moment() const { return v_.as({numel_}, DType::F32); }
  const AdamWSettings& settings() const { return settings_; }

 private:
  int64_t numel_;
  AdamWSettings settings_;
  HostBuffer m_, v_;
  int64_t steps_taken_ = 0;
};

}  // namespace t6
