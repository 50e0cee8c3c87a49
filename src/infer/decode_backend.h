// Where t6_generate decodes (--backend): "cpu", "cuda" (the decoder on GPU 0: weights, cache and
// activations in device memory, decode attention by the split-KV kernels), or "auto", which picks
// CUDA where the build has it, a GPU is visible and the model decodes there. MLA's absorbed maps and
// the materialised TPA order run on the host only: auto keeps them on the CPU, cuda refuses them.
#pragma once
#include <string>

#include "core/tensor.h"
#include "infer/decode_order.h"
#include "model/model_config.h"

namespace t6::infer {

struct DecodeBackend {
  Device device = Device::CPU;
  std::string description;  // "CPU" or "CUDA on GPU 0 (NVIDIA H100 80GB HBM3)"
};

// Throws one line naming the option and what to change when the request cannot be met. Selects GPU 0
// for CUDA.
DecodeBackend choose_decode_backend(const std::string& backend, const ModelConfig& config, TpaDecodeOrder order);

}  // namespace t6::infer
