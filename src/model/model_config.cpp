#include "model/model_config.h"

#include <cmath>

#include "core/error.h"

namespace t6 {

const char* model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::T6: return "T6";
    case ModelKind::T6_kvonly: return "T6_kvonly";
    case ModelKind::llama_mha: return "llama_mha";
    case ModelKind::llama_gqa: return "llama_gqa";
    case ModelKind::llama_mla: return "llama_mla";
  }
  return "?";
}

namespace {
constexpr ModelKind kModelKinds[] = {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa,
                                     ModelKind::llama_mla};
}

std::vector<std::string> model_kind_names() {
  std::vector<std::string> names;
  for (ModelKind kind : kModelKinds) names.push_back(model_kind_name(kind));
  return names;
}

ModelKind model_kind_from_name(const std::string& name) {
  for (ModelKind kind : kModelKinds)
    if (name == model_kind_name(kind)) return kind;
  std::string accepted;
  for (const std::string& known : model_kind_names()) accepted += (accepted.empty() ? "" : ", ") + known;
  fail(str("model.kind '", name, "' is not one of ", accepted));
}

const std::vector<ConfigKey<ModelConfig>>& model_config_keys() {
  // The upper bounds are far above any trained model; they keep every size product (a layer's
  // weights, batch x seq x vocab logits) inside 64 bits, so that a typo is an error naming the key
  // instead of an overflowed allocation or hours spent building 10^11 layers.
  static const std::vector<ConfigKey<ModelConfig>> keys = {
      {"model.kind", ConfigType::string, one_of(model_kind_names()),
       "attention variant: T6 (TPA), T6_kvonly (TPA for K and V only), llama_mha, llama_gqa (MQA: group_size = n_head), "
       "llama_mla (latent attention)",
       [](const ModelConfig& config) -> ConfigValue { return std::string(model_kind_name(config.kind)); },
       [](ModelConfig& config, const ConfigValue& value) { config.kind = model_kind_from_name(std::get<std::string>(value)); }},
      config_key<ModelConfig>("model.n_layer", closed_range(1, 1 << 12), "transformer blocks (L)", [](auto& c) -> auto& { return c.n_layer; }),
      config_key<ModelConfig>("model.n_embd", closed_range(2, 1 << 17), "model width (d); the MLP hidden size is floor(8/3 d)",
                              [](auto& c) -> auto& { return c.n_embd; }),
      config_key<ModelConfig>("model.n_head", closed_range(1, 1 << 14), "attention (query) heads (H)", [](auto& c) -> auto& { return c.n_head; }),
      config_key<ModelConfig>("model.head_dim", closed_range(2, 1 << 14),
                              "dimension of one head (D); even (RoPE rotates halves); llama_mha: n_embd / n_head; llama_mla: the "
                              "query/key part without RoPE (may be odd)",
                              [](auto& c) -> auto& { return c.head_dim; }),
      config_key<ModelConfig>("model.q_rank", closed_range(1, 1 << 12), "rank of the factorised query (Rq; used by T6)",
                              [](auto& c) -> auto& { return c.q_rank; }),
      config_key<ModelConfig>("model.rank", closed_range(1, 1 << 12), "rank of the factorised K and V (R; used by T6 and T6_kvonly)",
                              [](auto& c) -> auto& { return c.rank; }),
      config_key<ModelConfig>("model.group_size", closed_range(1, 1 << 14), "query heads per KV head (used by llama_gqa; divides n_head)",
                              [](auto& c) -> auto& { return c.group_size; }),
      config_key<ModelConfig>("model.vocab_size", closed_range(1, 1 << 22),
                              "embedding rows; at least the tokenizer's vocabulary (GPT-2: 50257, padded to 50304)",
                              [](auto& c) -> auto& { return c.vocab_size; }),
      config_key<ModelConfig>("model.qk_rope_head_dim", closed_range(2, 1 << 14),
                              "llama_mla: rotated part of each query/key head (Dr), one key part shared by all heads; even",
                              [](auto& c) -> auto& { return c.qk_rope_head_dim; }),
      config_key<ModelConfig>("model.q_lora_rank", closed_range(1, 1 << 17), "llama_mla: width of the normed query latent (Cq)",
                              [](auto& c) -> auto& { return c.q_lora_rank; }),
      config_key<ModelConfig>("model.kv_lora_rank", closed_range(1, 1 << 17), "llama_mla: width of the normed key/value latent (Ckv)",
                              [](auto& c) -> auto& { return c.kv_lora_rank; }),
      config_key<ModelConfig>("model.v_head_dim", closed_range(1, 1 << 14), "llama_mla: width of each value head (Dv)",
                              [](auto& c) -> auto& { return c.v_head_dim; }),
  };
  return keys;
}

int64_t ModelConfig::mlp_hidden() const { return int64_t(std::floor(8.0 / 3.0 * double(n_embd))); }

int64_t ModelConfig::kv_heads() const { return kind == ModelKind::llama_gqa ? n_head / group_size : n_head; }

int64_t ModelConfig::parameter_count() const {
  const int64_t d = n_embd, H = n_head, D = head_dim, R = rank, Rq = q_rank;
  int64_t attention = 0;
  switch (kind) {
    case ModelKind::T6: attention = (H * (Rq + 2 * R) + D * (Rq + 2 * R)) * d + d * H * D; break;
    case ModelKind::T6_kvonly: attention = (H * D + H * 2 * R + D * 2 * R) * d + d * H * D; break;
    case ModelKind::llama_mha:
    case ModelKind::llama_gqa: attention = (H * D + 2 * kv_heads() * D) * d + d * H * D; break;
    case ModelKind::llama_mla: {
      const int64_t Dr = qk_rope_head_dim, Cq = q_lora_rank, Ckv = kv_lora_rank, Dv = v_head_dim;
      // q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, c_proj.
      attention = Cq * d + Cq + H * (D + Dr) * Cq + (Ckv + Dr) * d + Ckv + H * (D + Dv) * Ckv + d * H * Dv;
      break;
    }
  }
  const int64_t mlp = 3 * d * mlp_hidden();
  return vocab_size * d + n_layer * (attention + mlp);
}

std::string ModelConfig::describe() const {
  return str(model_kind_name(kind), " L", n_layer, " d", n_embd, " H", n_head, " D", head_dim,
             factorised_query() ? str(" Rq", q_rank) : "", factorised_kv() ? str(" R", rank) : "",
             kind == ModelKind::llama_gqa ? str(" group", group_size) : "",
             latent_attention() ? str(" Dr", qk_rope_head_dim, " Cq", q_lora_rank, " Ckv", kv_lora_rank, " Dv", v_head_dim) : "",
             " V", vocab_size);
}

double ModelConfig::training_flops_per_token(int64_t seq_len) const {
  // 12·L·H·D·T is 6·L·H·T·(score width + value width); MLA's scores are Dn + Dr wide, its values Dv.
  const int64_t widths = latent_attention() ? head_dim + qk_rope_head_dim + v_head_dim : 2 * head_dim;
  return 6.0 * double(parameter_count()) + 6.0 * double(n_layer * n_head * widths * seq_len);
}

void ModelConfig::validate() const {
  for (const ConfigKey<ModelConfig>& key : model_config_keys()) key.check_range(*this);
  if (kind == ModelKind::llama_mha)
    T6_CHECK(n_embd % n_head == 0, "model.n_head (", n_head, ") must divide model.n_embd (", n_embd,
             ") for llama_mha, whose head_dim is n_embd / n_head");
  if (latent_attention()) {
    // MLA rotates only the qk_rope_head_dim part, so head_dim (the part without RoPE) may be odd.
    T6_CHECK(qk_rope_head_dim % 2 == 0, "model.qk_rope_head_dim must be even (RoPE rotates halves), got ", qk_rope_head_dim);
  } else {
    T6_CHECK(head_dim % 2 == 0, "model.head_dim must be even (RoPE rotates halves), got ", head_dim);
  }
  if (kind == ModelKind::llama_mha)
    T6_CHECK(head_dim * n_head == n_embd, "model.head_dim must be n_embd / n_head (", n_embd / n_head, ") for llama_mha, got ", head_dim);
  if (kind == ModelKind::llama_gqa)
    T6_CHECK(n_head % group_size == 0, "model.group_size (", group_size, ") must divide model.n_head (", n_head, ")");
  T6_CHECK(mlp_hidden() >= 1, "model.n_embd too small for an MLP");
}

std::map<std::string, std::string> ModelConfig::to_metadata() const {
  std::map<std::string, std::string> metadata = {
      {"model", model_kind_name(kind)},          {"n_layer", std::to_string(n_layer)},
      {"n_embd", std::to_string(n_embd)},        {"n_head", std::to_string(n_head)},
      {"head_dim", std::to_string(head_dim)},    {"q_rank", std::to_string(q_rank)},
      {"rank", std::to_string(rank)},            {"group_size", std::to_string(group_size)},
      {"vocab_size", std::to_string(vocab_size)}};
  if (latent_attention()) {
    metadata["qk_rope_head_dim"] = std::to_string(qk_rope_head_dim);
    metadata["q_lora_rank"] = std::to_string(q_lora_rank);
    metadata["kv_lora_rank"] = std::to_string(kv_lora_rank);
    metadata["v_head_dim"] = std::to_string(v_head_dim);
  }
  return metadata;
}

std::string model_config_differences(const ModelConfig& first, const std::string& first_name,
                                     const ModelConfig& second, const std::string& second_name) {
  const auto first_values = first.to_metadata(), second_values = second.to_metadata();
  std::string differences;
  for (const auto& [key, value] : first_values) {
    // Keys of one kind only (MLA's latent ranks) are absent from the other: the kinds differ already.
    const auto other_entry = second_values.find(key);
    if (other_entry == second_values.end()) continue;
    const std::string& other = other_entry->second;
    if (value == other) continue;
    // The metadata calls the kind "model" (as the fixtures do); the config key is model.kind.
    differences += str(differences.empty() ? "" : ", ", "model.", key == "model" ? "kind" : key, " (", first_name, " ",
                       value, ", ", second_name, " ", other, ")");
  }
  return differences;
}

ModelConfig ModelConfig::from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
  auto integer = [&](const std::string& key, bool required, int64_t fallback) -> int64_t {
    auto found = metadata.find(key);
    if (found == metadata.end()) {
      T6_CHECK(!required, source, ": metadata has no '", key, "'");
      return fallback;
    }
    try {
      size_t used = 0;
      const int64_t value = std::stoll(found->second, &used);
      T6_CHECK(used == found->second.size(), "trailing characters");
      return value;
    } catch (const std::exception&) {
      fail(str(source, ": metadata '", key, "' = '", found->second, "' is not an integer"));
    }
  };
  auto kind_entry = metadata.find("model");
  T6_CHECK(kind_entry != metadata.end(), source, ": metadata has no 'model' (the model kind)");
  ModelConfig config;
  config.kind = model_kind_from_name(kind_entry->second);
  config.n_layer = integer("n_layer", true, 0);
  config.n_embd = integer("n_embd", true, 0);
  config.n_head = integer("n_head", true, 0);
  config.vocab_size = integer("vocab_size", true, 0);
  const bool mha = config.kind == ModelKind::llama_mha;
  config.head_dim = integer("head_dim", !mha, config.n_head ? config.n_embd / config.n_head : 0);
  config.q_rank = integer("q_rank", config.kind == ModelKind::T6, 6);
  config.rank = integer("rank", config.factorised_kv(), 2);
  config.group_size = integer("group_size", config.kind == ModelKind::llama_gqa, 1);
  if (config.kind != ModelKind::llama_gqa) config.group_size = 1;
  if (config.latent_attention()) {
    config.qk_rope_head_dim = integer("qk_rope_head_dim", true, 0);
    config.q_lora_rank = integer("q_lora_rank", true, 0);
    config.kv_lora_rank = integer("kv_lora_rank", true, 0);
    config.v_head_dim = integer("v_head_dim", true, 0);
  }
  config.validate();
  return config;
}

}  // namespace t6
