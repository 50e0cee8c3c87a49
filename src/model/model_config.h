// The model's shape: which attention variant and its sizes (docs/MODEL.md sections 1-3).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/config_key.h"

namespace t6 {

// The fixtures' `model` values; MQA is llama_gqa with group_size == n_head.
enum class ModelKind { T6, T6_kvonly, llama_mha, llama_gqa, llama_mla };
const char* model_kind_name(ModelKind kind);
ModelKind model_kind_from_name(const std::string& name);  // throws naming the accepted values
std::vector<std::string> model_kind_names();              // every kind, in enum order

struct ModelConfig {
  ModelKind kind = ModelKind::T6;
  int64_t n_layer = 12;
  int64_t n_embd = 768;
  int64_t n_head = 34;
  int64_t head_dim = 64;    // llama_mha: always n_embd / n_head; llama_mla: the part without RoPE
  int64_t q_rank = 6;       // T6 only
  int64_t rank = 2;         // T6 and T6_kvonly: rank of the K and V factors
  int64_t group_size = 1;   // llama_gqa: query heads per KV head
  int64_t vocab_size = 50304;
  // llama_mla only (docs/MODEL.md 3.1), defaults the paper's small settings.
  int64_t qk_rope_head_dim = 32;  // Dr: the rotated part of each query head and the one shared key part
  int64_t q_lora_rank = 512;      // Cq: width of the query latent
  int64_t kv_lora_rank = 256;     // Ckv: width of the key/value latent
  int64_t v_head_dim = 64;        // Dv: value head width (may differ from head_dim)

  // floor(8/3 · d) computed in double exactly as the reference's math.floor(8 / 3 * n_embd).
  int64_t mlp_hidden() const;
  int64_t kv_heads() const;  // n_head / group_size for GQA, n_head otherwise
  bool factorised_query() const { return kind == ModelKind::T6; }
  bool factorised_kv() const { return kind == ModelKind::T6 || kind == ModelKind::T6_kvonly; }
  bool latent_attention() const { return kind == ModelKind::llama_mla; }
  // Width RoPE rotates (its tables are (T, rope_dim / 2)): qk_rope_head_dim for MLA, head_dim otherwise.
  int64_t rope_dim() const { return latent_attention() ? qk_rope_head_dim : head_dim; }
  int64_t parameter_count() const;
  // "T6 L4 d192 H6 D64 Rq6 R2 V50304" (with the kind's own keys): the start-up table's, the plan's
  // and t6_ckpt inspect's one-line name of the model.
  std::string describe() const;
  // FLOPs of one training token (forward + backward), docs/MODEL.md section 5, at sequence length T.
  double training_flops_per_token(int64_t seq_len) const;
  // Values outside a key's range (model_config_keys()) and impossible combinations (odd head_dim,
  // a group size that does not divide the heads, an odd qk_rope_head_dim, ...) throw an error naming the key ("model.<key>").
  void validate() const;

  // The fixtures' and exports' string metadata (docs/MODEL.md 2.1) and back.
  std::map<std::string, std::string> to_metadata() const;
  static ModelConfig from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source);
};

// The [model] rows of the run config's key table (train/run_config.h adds the other sections).
const std::vector<ConfigKey<ModelConfig>>& model_config_keys();

// The keys in which two configs differ, for an error message: "model.n_layer (checkpoint 2, run 3),
// ..." with the two configs named as given; empty when they describe the same model.
std::string model_config_differences(const ModelConfig& first, const std::string& first_name,
                                     const ModelConfig& second, const std::string& second_name);

}  // namespace t6
