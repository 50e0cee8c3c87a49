// The generation cache (docs/MODEL.md 1.3): per layer, the tensors each model kind keeps of every past
// token, for a fixed number of sequences (slots) and a context length chosen once. TPA and
// TPA-KVonly keep the factors A_k, B̃_k (after RoPE), A_v, B_v: (Rk+Rv)(H+D) numbers per token and
// layer; MHA and GQA keep k̃ (after RoPE) and v: 2·Hkv·D; MLA its normed latent and rotated k_pe
// (docs/MODEL.md 3.1): Ckv + Dr. One allocation holds everything.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace t6::infer {

// One cached tensor of a token: `rows` × `cols` fp32 numbers (e.g. A_k: H × R).
struct CacheField {
  std::string name;
  int64_t rows = 0, cols = 0;
  int64_t numel() const { return rows * cols; }
};

// What a model kind caches per token and layer, in the order the decode attention reads it.
std::vector<CacheField> cache_fields(const ModelConfig& config);
// Bytes of one token's cache over all layers: n_layer · Σ fields · sizeof(float).
int64_t cache_bytes_per_token(const ModelConfig& config);

class KvCache {
 public:
  // Allocates slots × max_context tokens for every layer and field, zeroed.
  KvCache(const ModelConfig& config, int64_t slots, int64_t max_context);

  int64_t slots() const { return slots_; }
  int64_t max_context() const { return max_context_; }
  size_t bytes() const { return buffer_.bytes(); }
  const std::vector<CacheField>& fields() const { return fields_; }

  // Field `field` of `layer` for one slot: (max_context, rows, cols).
  Tensor field(int64_t layer, size_t field, int64_t slot) const;
  // Tokens held per slot; positions [0, length) of each slot are valid.
  int64_t length(int64_t slot) const { return lengths_[size_t(slot)]; }
  void set_length(int64_t slot, int64_t length);

 private:
  std::vector<CacheField> fields_;
  int64_t layers_, slots_, max_context_, token_numel_;  // token_numel_: Σ fields, one layer
  std::vector<int64_t> lengths_;
  HostBuffer buffer_;
};

}  // namespace t6::infer
