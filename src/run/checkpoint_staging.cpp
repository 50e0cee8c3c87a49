#include "run/checkpoint_staging.h"

#include "core/device_memory.h"

namespace t6 {

namespace {
bool on_device(const ModelWeights& weights) { return weights.device() != Device::CPU; }
}  // namespace

CheckpointStaging::CheckpointStaging(ModelWeights& weights, AdamW& adamw, int64_t state_begin, int64_t state_end)
    : live_weights_(weights),
      live_adamw_(adamw),
      state_begin_(state_begin),
      state_end_(state_end),
      host_weights_(on_device(weights)
                        ? std::make_unique<ModelWeights>(weights.config(), weights.table().tp_rank(),
                                                         weights.table().tp_size(), weights.padded_numel(), false)
                        : nullptr),
      host_moments_([&](Arena& arena) {
        if (!on_device(weights)) return;
        host_m_ = arena.take(adamw.first_moment().shape());
        host_v_ = arena.take(adamw.second_moment().shape());
      }) {}

OptimizerShard CheckpointStaging::optimizer_shard() const {
  if (!host_weights_) return {live_adamw_.first_moment(), live_adamw_.second_moment(), state_begin_, state_end_};
  return {host_m_, host_v_, state_begin_, state_end_};
}

void CheckpointStaging::download() {
  if (!host_weights_) return;
  copy_tensor(host_weights_->padded_params(), live_weights_.padded_params());
  copy_tensor(host_m_, live_adamw_.first_moment());
  copy_tensor(host_v_, live_adamw_.second_moment());
}

void CheckpointStaging::upload() {
  if (!host_weights_) return;
  copy_tensor(live_weights_.padded_params(), host_weights_->padded_params());
  live_weights_.refresh_matmul_copy();  // checkpoints hold the fp32 masters only
  copy_tensor(live_adamw_.first_moment(), host_m_);
  copy_tensor(live_adamw_.second_moment(), host_v_);
}

}  // namespace t6
