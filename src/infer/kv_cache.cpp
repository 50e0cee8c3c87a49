#include "infer/kv_cache.h"

#include "core/error.h"

namespace t6::infer {

std::vector<CacheField> cache_fields(const ModelConfig& config) {
  const int64_t H = config.n_head, D = config.head_dim, R = config.rank;
  if (config.factorised_kv()) return {{"A_k", H, R}, {"B_k", R, D}, {"A_v", H, R}, {"B_v", R, D}};
  // MLA: one row per token, the normed latent N_w(c) (Ckv) followed by the rotated k_pe (Dr), so that
  // the row is the key of the absorbed attention (mla_step.h) and its first Ckv numbers the value.
  if (config.latent_attention()) return {{"latent", 1, config.kv_lora_rank + config.qk_rope_head_dim}};
  return {{"k", config.kv_heads(), D}, {"v", config.kv_heads(), D}};
}

namespace {
int64_t token_numel(const std::vector<CacheField>& fields) {
  int64_t numel = 0;
  for (const CacheField& field : fields) numel += field.numel();
  return numel;
}
}  // namespace

int64_t cache_bytes_per_token(const ModelConfig& config) {
  return config.n_layer * token_numel(cache_fields(config)) * int64_t(sizeof(float));
}

KvCache::KvCache(const ModelConfig& config, int64_t slots, int64_t max_context)
    : fields_(cache_fields(config)),
      layers_(config.n_layer),
      slots_(slots),
      max_context_(max_context),
      token_numel_(token_numel(fields_)),
      lengths_(size_t(slots), 0),
      buffer_(size_t(slots) * size_t(max_context) * size_t(cache_bytes_per_token(config))) {
  T6_CHECK(slots >= 1 && max_context >= 1, "the cache needs at least one sequence and one position");
}

// Layout: [layer][field][slot][position][rows][cols], so one slot's field is contiguous.
Tensor KvCache::field(int64_t layer, size_t field, int64_t slot) const {
  T6_ASSERT(layer < layers_ && field < fields_.size() && slot < slots_);
  int64_t offset = layer * slots_ * max_context_ * token_numel_;
  for (size_t before = 0; before < field; ++before) offset += slots_ * max_context_ * fields_[before].numel();
  offset += slot * max_context_ * fields_[field].numel();
  return Tensor(static_cast<float*>(buffer_.data()) + offset, {max_context_, fields_[field].rows, fields_[field].cols},
                DType::F32);
}

void KvCache::set_length(int64_t slot, int64_t length) {
  T6_ASSERT(slot < slots_ && length >= 0 && length <= max_context_);
  lengths_[size_t(slot)] = length;
}

}  // namespace t6::infer
