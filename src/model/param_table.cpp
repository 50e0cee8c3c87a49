#include "model/param_table.h"

#include <cmath>

#include "core/error.h"

namespace t6 {

Range balanced_range(int64_t count, int64_t parts, int64_t part) {
  const int64_t base = count / parts, extra = count % parts;
  const int64_t begin = part * base + std::min(part, extra);
  return {begin, begin + base + (part < extra ? 1 : 0)};
}

std::string ShardRule::describe() const {
  if (kind == Kind::Replicated) return partial_gradient ? "replicated (TP-reduced grad)" : "replicated";
  return str("split dim ", axis, " in ", units, " units of ", unit_size);
}

HeadLayout head_layout(const ModelConfig& config, int tp_rank, int tp_size) {
  const int64_t kv_heads = config.kv_heads();
  const int64_t group = config.n_head / kv_heads;
  HeadLayout layout;
  if (config.kind == ModelKind::llama_gqa && tp_size <= kv_heads) {
    // Each query head stays with its KV head: split KV heads, take their query groups along.
    const Range kv = balanced_range(kv_heads, tp_size, tp_rank);
    layout = {kv.begin * group, kv.size() * group, kv.begin, kv.size(), false};
  } else {
    const Range heads = balanced_range(config.n_head, tp_size, tp_rank);
    layout.first_head = heads.begin;
    layout.local_heads = heads.size();
    if (config.kind == ModelKind::llama_gqa && group > 1) {
      // More ranks than KV heads (MQA): every rank keeps all KV heads.
      layout.first_kv_head = 0;
      layout.local_kv_heads = kv_heads;
      layout.kv_replicated = true;
    } else {
      layout.first_kv_head = heads.begin;
      layout.local_kv_heads = heads.size();
    }
  }
  return layout;
}

namespace {

std::string layer_prefix(int64_t layer) { return str("transformer.h.", layer, "."); }

// MLA (docs/MODEL.md 3.1) in the reference's order, c_proj excepted. The latent projections and norms
// are computed in full on every TP rank, but each rank's gradient holds only its heads' share, so
// they are replicated with TP-reduced gradients; q_b_proj and kv_b_proj give each head its own rows.
// Linear layers have torch's default init, uniform ±1/sqrt(fan_in); norm weights start at one.
void add_latent_attention_specs(const ModelConfig& config, const std::string& attn, std::vector<ParamSpec>& specs) {
  const int64_t d = config.n_embd, H = config.n_head, Dn = config.head_dim, Dr = config.qk_rope_head_dim;
  const int64_t Cq = config.q_lora_rank, Ckv = config.kv_lora_rank, Dv = config.v_head_dim;
  auto bound = [](int64_t fan_in) { return float(1.0 / std::sqrt(double(fan_in))); };
  const ShardRule shared = ShardRule::replicated(true);
  specs.push_back({attn + "q_a_proj.weight", {Cq, d}, shared, InitKind::Uniform, bound(d)});
  specs.push_back({attn + "q_a_layernorm.weight", {Cq}, shared, InitKind::One, 0.0f});
  specs.push_back({attn + "q_b_proj.weight", {H * (Dn + Dr), Cq}, ShardRule::split(0, Dn + Dr, H), InitKind::Uniform, bound(Cq)});
  specs.push_back({attn + "kv_a_layernorm.weight", {Ckv}, shared, InitKind::One, 0.0f});
  specs.push_back({attn + "kv_a_proj_with_mqa.weight", {Ckv + Dr, d}, shared, InitKind::Uniform, bound(d)});
  specs.push_back({attn + "kv_b_proj.weight", {H * (Dn + Dv), Ckv}, ShardRule::split(0, Dn + Dv, H), InitKind::Uniform,
                   bound(Ckv)});
}

void add_attention_specs(const ModelConfig& config, int64_t layer, bool kv_replicated, std::vector<ParamSpec>& specs) {
  const int64_t d = config.n_embd, H = config.n_head, D = config.head_dim;
  const std::string attn = layer_prefix(layer) + "attn.";
  const float linear_bound = float(1.0 / std::sqrt(double(d)));
  const int64_t value_dim = config.latent_attention() ? config.v_head_dim : D;  // width of each head's output
  ShardRule output_rule = ShardRule::split(1, value_dim, H);
  auto factor_A = [&](const std::string& name, int64_t rank) {
    // Xavier-uniform of the weight viewed as (d, H, rank): fan_in H·rank, fan_out d·rank.
    const float bound = float(std::sqrt(6.0 / double(rank * (H + d))));
    specs.push_back({attn + "c_qkv." + name + ".weight", {H * rank, d}, ShardRule::split(0, rank, H), InitKind::Uniform, bound});
  };
  auto factor_B = [&](const std::string& name, int64_t rank) {
    // Xavier-uniform of the weight viewed as (d, rank, D): fan_in rank·D, fan_out d·D.
    const float bound = float(std::sqrt(6.0 / double(D * (rank + d))));
    specs.push_back({attn + "c_qkv." + name + ".weight", {rank * D, d}, ShardRule::replicated(true), InitKind::Uniform, bound});
  };
  switch (config.kind) {
    case ModelKind::T6:
      factor_A("W_A_q", config.q_rank);
      factor_A("W_A_k", config.rank);
      factor_A("W_A_v", config.rank);
      factor_B("W_B_q", config.q_rank);
      factor_B("W_B_k", config.rank);
      factor_B("W_B_v", config.rank);
      break;
    case ModelKind::T6_kvonly: {
      const float bound = float(std::sqrt(6.0 / double(d + H * D)));
      specs.push_back({attn + "c_qkv.c_q.weight", {H * D, d}, ShardRule::split(0, D, H), InitKind::Uniform, bound});
      factor_A("W_A_k", config.rank);
      factor_A("W_A_v", config.rank);
      factor_B("W_B_k", config.rank);
      factor_B("W_B_v", config.rank);
      break;
    }
    case ModelKind::llama_mha:
    case ModelKind::llama_gqa: {
      // While KV heads are split, a unit of c_q and c_proj is one KV head's whole query group, so
      // every query head lands on the rank of its KV head.
      const int64_t kv_heads = config.kv_heads(), group = H / kv_heads;
      const ShardRule query_rule = kv_replicated ? ShardRule::split(0, D, H) : ShardRule::split(0, D * group, kv_heads);
      output_rule = kv_replicated ? ShardRule::split(1, D, H) : ShardRule::split(1, D * group, kv_heads);
      specs.push_back({attn + "c_q.weight", {H * D, d}, query_rule, InitKind::Uniform, linear_bound});
      const ShardRule kv_rule = kv_replicated ? ShardRule::replicated(true) : ShardRule::split(0, D, kv_heads);
      specs.push_back({attn + "c_k.weight", {kv_heads * D, d}, kv_rule, InitKind::Uniform, linear_bound});
      specs.push_back({attn + "c_v.weight", {kv_heads * D, d}, kv_rule, InitKind::Uniform, linear_bound});
      break;
    }
    case ModelKind::llama_mla: add_latent_attention_specs(config, attn, specs); break;
  }
  specs.push_back({attn + "c_proj.weight", {d, H * value_dim}, output_rule, InitKind::Zero, 0.0f});
}

}  // namespace

std::vector<ParamSpec> model_param_specs(const ModelConfig& config, int tp_size) {
  const bool kv_replicated = head_layout(config, 0, tp_size).kv_replicated;
  const int64_t d = config.n_embd, hidden = config.mlp_hidden();
  const float linear_bound = float(1.0 / std::sqrt(double(d)));
  std::vector<ParamSpec> specs;
  // Tied with lm_head.weight and vocab-parallel (Megatron): each TP rank holds a block of rows, looks
  // up the tokens it owns and computes the logits of its columns (see LanguageModel).
  specs.push_back({"transformer.wte.weight", {config.vocab_size, d}, ShardRule::split(0, 1, config.vocab_size),
                   InitKind::Uniform, linear_bound});
  for (int64_t layer = 0; layer < config.n_layer; ++layer) {
    add_attention_specs(config, layer, kv_replicated, specs);
    const std::string mlp = layer_prefix(layer) + "mlp.";
    specs.push_back({mlp + "c_fc1.weight", {hidden, d}, ShardRule::split(0, 1, hidden), InitKind::Uniform, linear_bound});
    specs.push_back({mlp + "c_fc2.weight", {hidden, d}, ShardRule::split(0, 1, hidden), InitKind::Uniform, linear_bound});
    specs.push_back({mlp + "c_proj.weight", {d, hidden}, ShardRule::split(1, 1, hidden), InitKind::Zero, 0.0f});
  }
  return specs;
}

ParamTable::ParamTable(const ModelConfig& config, int tp_rank, int tp_size) : tp_rank_(tp_rank), tp_size_(tp_size) {
  config.validate();
  T6_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "invalid tensor-parallel rank ", tp_rank, " of ", tp_size);
  T6_CHECK(tp_size <= config.n_head, "parallel.tp = ", tp_size, " is larger than model.n_head = ", config.n_head,
           ": every tensor-parallel rank needs at least one attention head");
  T6_CHECK(tp_size <= config.mlp_hidden(), "parallel.tp = ", tp_size, " is larger than the MLP hidden size ", config.mlp_hidden());
  T6_CHECK(tp_size <= config.vocab_size, "parallel.tp = ", tp_size, " is larger than model.vocab_size = ", config.vocab_size);
  heads_ = head_layout(config, tp_rank, tp_size);
  for (const ParamSpec& spec : model_param_specs(config, tp_size)) {
    LocalParam local{spec, spec.global_shape, 0, local_numel_};
    if (spec.rule.kind == ShardRule::Kind::Split) {
      const Range range = local_range(spec);
      local.axis_offset = range.begin;
      local.local_shape.dims[spec.rule.axis] = range.size();
    }
    local_numel_ += local.numel();
    params_.push_back(local);
  }
}

Range ParamTable::local_range(const ParamSpec& spec) const {
  if (spec.rule.kind == ShardRule::Kind::Replicated) return {0, spec.global_shape[spec.rule.axis]};
  const Range units = balanced_range(spec.rule.units, tp_size_, tp_rank_);
  return {units.begin * spec.rule.unit_size, units.end * spec.rule.unit_size};
}

const LocalParam& ParamTable::find(const std::string& name) const {
  for (const LocalParam& param : params_)
    if (param.spec.name == name) return param;
  fail(str("the model has no parameter named '", name, "'"));
}

int64_t ParamTable::first_param_of_layer(int64_t layer) const {
  const std::string prefix = layer_prefix(layer);
  for (size_t index = 0; index < params_.size(); ++index)
    if (params_[index].spec.name.rfind(prefix, 0) == 0) return int64_t(index);
  fail(str("the model has no block ", layer));
}

}  // namespace t6
