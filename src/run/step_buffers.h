// A training step's buffers on the model's device: the batch (token ids and targets) and the three
// step scalars (the mean loss, and this rank's share of the squared gradient norm and of the count
// of non-finite gradient elements). On the CUDA backend the loader writes the batch into pinned host
// memory, which upload() copies to the device on the ops' stream without waiting, and
// read_scalars() is the step's one host synchronisation.
// On the CPU backend the device tensors are the host ones and both calls cost nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "core/device_memory.h"
#include "core/tensor.h"

namespace t6 {

class StepBuffers {
 public:
  // Room for `tokens` inputs and as many targets.
  StepBuffers(Device device, int64_t tokens);

  int32_t* host_inputs() const { return host_.data<int32_t>(); }
  int32_t* host_targets() const { return host_.data<int32_t>() + tokens_; }
  void upload();  // the host batch → the device batch, in order with the ops
  // `count` tokens from `first` of the device batch, as (rows, count / rows).
  Tensor inputs(int64_t first, int64_t rows, int64_t count) const;
  Tensor targets(int64_t first, int64_t rows, int64_t count) const;

  Tensor loss_total() const { return scalars_.rows(0, 1); }        // F64 (1) on the device
  // F64 (2) on the device: {Σ g², the number of NaN or ±inf elements} (grad_statistics_into).
  Tensor grad_statistics() const { return scalars_.rows(1, 3); }
  struct Scalars {
    double loss, grad_square_sum, grad_non_finite;
  };
  Scalars read_scalars();  // waits for the device once, reading all three together

  size_t device_bytes() const { return device_arena_.bytes(); }

 private:
  Device device_;
  int64_t tokens_;
  PinnedHostBuffer pinned_;       // CUDA: the host side of the batch and of the scalars
  std::vector<int64_t> host_memory_;  // CPU: the same, in ordinary memory
  Tensor host_, host_scalars_;    // I32 (2 · tokens): inputs then targets; F64 (kScalars)
  Tensor batch_, scalars_;        // on the device: the batch and the scalars; declared before the arena
  Arena device_arena_;
};

}  // namespace t6
