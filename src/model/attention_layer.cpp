#include "model/attention_layer.h"

#include "model/gqa_attention.h"
#include "model/mla_attention.h"
#include "model/tpa_attention.h"

namespace t6 {

std::unique_ptr<AttentionLayer> make_attention_layer(const ModelWeights& weights, int64_t layer) {
  if (weights.config().factorised_kv()) return std::make_unique<TpaAttention>(weights, layer);
  if (weights.config().latent_attention()) return std::make_unique<MlaAttention>(weights, layer);
  return std::make_unique<GqaAttention>(weights, layer);
}

}  // namespace t6
