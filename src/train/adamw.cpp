#include "train/adamw.h"

namespace t6 {

AdamW::AdamW(int64_t numel, const AdamWSettings& settings, Device device)
    : numel_(numel),
      settings_(settings),
      state_(
          [&](Arena& arena) {
            m_ = arena.take({numel});
            v_ = arena.take({numel});
          },
          device) {}

void AdamW::step(const Tensor& params, const Tensor& grads, float lr, float grad_scale, const Tensor& params_bf16) {
  T6_ASSERT(params.numel() == numel_ && grads.numel() == numel_ && (params_bf16.empty() || params_bf16.numel() == numel_));
  ++steps_taken_;
  const ops::AdamWStep hyper{lr, settings_.beta1, settings_.beta2, settings_.eps, settings_.weight_decay, steps_taken_, grad_scale};
  ops::adamw_update(params, grads, first_moment(), second_moment(), hyper, params_bf16);
}

}  // namespace t6
