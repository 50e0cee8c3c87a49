#include "infer/kv_cache.h"

#include "core/error.h"

namespace t6::infer {

std::vector<CacheField> cache_fields(const ModelConfig& config) {
  const int64_t H = config.n_head, D = config.head_dim, R = config.rank;
  // A_k and A_v are kept transposed, rank by head, so that the decode attention reads each rank's
  // coefficients of all heads as one contiguous run (kernels/ops.h, tpa_decode_attention).
  if (config.factorised_kv()) return {{"A_k", R, H}, {"B_k", R, D}, {"A_v", R, H}, {"B_v", R, D}};
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

int64_t cache_bytes_per_token(const ModelConfig& config, DType dtype) {
  return config.n_layer * token_numel(cache_fields(config)) * int64_t(dtype_size(dtype));
}

DType cache_dtype_from_name(const std::string& name) {
  if (name == "fp32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  fail(str("unknown cache dtype '", name, "' (expected fp32 or bf16)"));
}

const char* cache_dtype_name(DType dtype) { return dtype == DType::BF16 ? "bf16" : "fp32"; }

KvCache::KvCache(const ModelConfig& config, int64_t slots, int64_t max_context, DType dtype, Device device)
    : fields_(cache_fields(config)),
      dtype_(dtype),
      device_(device),
      layers_(config.n_layer),
      slots_(slots),
      max_context_(max_context),
      token_numel_(token_numel(fields_)),
      lengths_(size_t(slots), 0),
      bytes_(size_t(slots) * size_t(max_context) * size_t(cache_bytes_per_token(config, dtype))) {
  T6_CHECK(slots >= 1 && max_context >= 1, "the cache needs at least one sequence and one position");
  T6_CHECK(dtype == DType::F32 || dtype == DType::BF16, "the cache holds fp32 or bf16, not ", dtype_name(dtype));
  if (device == Device::CUDA) {
    device_buffer_ = DeviceBuffer(bytes_);
    base_ = static_cast<char*>(device_buffer_.data());
  } else {
    host_buffer_ = HostBuffer(bytes_, HostPages::huge);
    base_ = static_cast<char*>(host_buffer_.data());
  }
}

// Layout: [layer][field][slot][position][rows][cols], so one slot's field is contiguous and the
// decode attention streams each field of a sequence front to back.
Tensor KvCache::layer_field(int64_t layer, size_t field) const {
  T6_ASSERT(layer < layers_ && field < fields_.size());
  int64_t offset = layer * slots_ * max_context_ * token_numel_;
  for (size_t before = 0; before < field; ++before) offset += slots_ * max_context_ * fields_[before].numel();
  return Tensor(base_ + offset * int64_t(dtype_size(dtype_)),
                {slots_, max_context_, fields_[field].rows, fields_[field].cols}, dtype_, device_);
}

Tensor KvCache::field(int64_t layer, size_t field, int64_t slot) const {
  T6_ASSERT(slot < slots_);
  const Tensor all = layer_field(layer, field);
  return Tensor(static_cast<char*>(all.raw()) + slot * max_context_ * fields_[field].numel() * int64_t(dtype_size(dtype_)),
                {max_context_, fields_[field].rows, fields_[field].cols}, dtype_, device_);
}

void KvCache::set_length(int64_t slot, int64_t length) {
  T6_ASSERT(slot < slots_ && length >= 0 && length <= max_context_);
  lengths_[size_t(slot)] = length;
}

}  // namespace t6::infer
