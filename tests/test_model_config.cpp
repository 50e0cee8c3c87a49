// ModelConfig (sizes, validation, metadata) and ParamTable (how weights split over tensor-parallel
// ranks), against the numbers of docs/MODEL.md sections 2 and 3.
#include <gtest/gtest.h>

#include "common/training_setup.h"

#include <cstdio>
#include <map>
#include <string>

#include "core/error.h"
#include "model/model_config.h"
#include "model/param_table.h"

using namespace t6;
using namespace t6::testing;

namespace {

ModelConfig t6_config(int64_t n_layer, int64_t n_embd, int64_t n_head) {
  ModelConfig config;
  config.kind = ModelKind::T6;
  config.n_layer = n_layer;
  config.n_embd = n_embd;
  config.n_head = n_head;
  config.head_dim = 64;
  config.q_rank = 6;
  config.rank = 2;
  config.vocab_size = 50304;
  return config;
}

// The count in millions as docs/MODEL.md prints it, two decimals.
std::string millions(int64_t count) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", double(count) / 1e6);
  return text;
}

// The message of the t6::Error that validate() throws, or "" if it accepts the config.
std::string validation_error(const ModelConfig& config) {
  try {
    config.validate();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

bool same_config(const ModelConfig& a, const ModelConfig& b) {
  return a.kind == b.kind && a.n_layer == b.n_layer && a.n_embd == b.n_embd && a.n_head == b.n_head &&
         a.head_dim == b.head_dim && a.q_rank == b.q_rank && a.rank == b.rank && a.group_size == b.group_size &&
         a.vocab_size == b.vocab_size;
}

}  // namespace

// ---- sizes ---------------------------------------------------------------------------------------

TEST(ModelConfig, ParameterCountsOfThePaperConfigs) {
  EXPECT_EQ(millions(t6_config(12, 768, 34).parameter_count()), "124.34");
  EXPECT_EQ(millions(t6_config(24, 1024, 47).parameter_count()), "353.99");
  EXPECT_EQ(millions(t6_config(36, 1280, 61).parameter_count()), "773.70");
  EXPECT_EQ(millions(t6_config(48, 1600, 78).parameter_count()), "1555.81");

  // By hand for T6-small: embedding 50304·768 = 38,633,472; per layer the six factor maps
  // (34·10 + 64·10)·768 = 752,640, c_proj 768·34·64 = 1,671,168, MLP 3·768·2048 = 4,718,592.
  EXPECT_EQ(t6_config(12, 768, 34).parameter_count(), 38633472 + 12 * (752640 + 1671168 + 4718592));

  ModelConfig mha;
  mha.kind = ModelKind::llama_mha;
  mha.n_layer = 12;
  mha.n_embd = 768;
  mha.n_head = 12;
  mha.head_dim = 64;
  mha.vocab_size = 50304;
  EXPECT_EQ(millions(mha.parameter_count()), "123.57");
}

TEST(ModelConfig, MlpHiddenIsFloorOfEightThirdsD) {
  const std::map<int64_t, int64_t> hidden_of = {{768, 2048}, {1024, 2730}, {1280, 3413}, {1600, 4266}};
  for (const auto& [d, hidden] : hidden_of) {
    ModelConfig config;
    config.n_embd = d;
    EXPECT_EQ(config.mlp_hidden(), hidden) << "n_embd " << d;
  }
}

// ---- validation ----------------------------------------------------------------------------------

TEST(ModelConfig, ValidateRejectsImpossibleValuesNamingTheKey) {
  EXPECT_EQ(validation_error(t6_config(12, 768, 34)), "");
  EXPECT_EQ(validation_error(fixture_model_config(ModelKind::llama_gqa)), "");

  ModelConfig odd_head_dim = t6_config(2, 64, 6);
  odd_head_dim.head_dim = 15;  // RoPE rotates two halves
  EXPECT_NE(validation_error(odd_head_dim).find("model.head_dim"), std::string::npos) << validation_error(odd_head_dim);

  ModelConfig rank_zero = t6_config(2, 64, 6);
  rank_zero.rank = 0;
  EXPECT_NE(validation_error(rank_zero).find("model.rank"), std::string::npos) << validation_error(rank_zero);

  ModelConfig q_rank_zero = t6_config(2, 64, 6);
  q_rank_zero.q_rank = 0;
  EXPECT_NE(validation_error(q_rank_zero).find("model.q_rank"), std::string::npos) << validation_error(q_rank_zero);

  ModelConfig bad_group = fixture_model_config(ModelKind::llama_gqa);
  bad_group.group_size = 4;  // does not divide 6 heads
  EXPECT_NE(validation_error(bad_group).find("model.group_size"), std::string::npos) << validation_error(bad_group);
}

// ---- metadata ------------------------------------------------------------------------------------

TEST(ModelConfig, FromMetadataOfAFixtureLikeMapAndRoundTrip) {
  // As in tests/fixtures/t6_tiny.safetensors: config keys among training keys that are ignored.
  const std::map<std::string, std::string> fixture = {
      {"model", "T6"},    {"n_layer", "2"},     {"n_embd", "64"},        {"n_head", "6"},
      {"head_dim", "16"}, {"q_rank", "6"},      {"rank", "2"},           {"vocab_size", "128"},
      {"batch", "2"},     {"seq_len", "24"},    {"adamw_steps", "3"},    {"lr", "0.001"},
      {"betas", "0.9,0.95"}, {"torch", "1.13.0a0"}, {"parameters", "transformer.wte.weight"}};
  const ModelConfig config = ModelConfig::from_metadata(fixture, "t6_tiny.safetensors");
  EXPECT_EQ(config.kind, ModelKind::T6);
  EXPECT_EQ(config.n_layer, 2);
  EXPECT_EQ(config.n_embd, 64);
  EXPECT_EQ(config.n_head, 6);
  EXPECT_EQ(config.head_dim, 16);
  EXPECT_EQ(config.q_rank, 6);
  EXPECT_EQ(config.rank, 2);
  EXPECT_EQ(config.vocab_size, 128);

  // The MHA fixture has no head_dim: it is n_embd / n_head.
  const ModelConfig mha = ModelConfig::from_metadata(
      {{"model", "llama_mha"}, {"n_layer", "2"}, {"n_embd", "64"}, {"n_head", "4"}, {"vocab_size", "128"}}, "mha_tiny");
  EXPECT_EQ(mha.head_dim, 16);

  for (const ModelConfig& original : {config, mha, fixture_model_config(ModelKind::llama_gqa), t6_config(48, 1600, 78)}) {
    const ModelConfig back = ModelConfig::from_metadata(original.to_metadata(), "round trip");
    EXPECT_TRUE(same_config(back, original)) << model_kind_name(original.kind);
    EXPECT_EQ(back.to_metadata(), original.to_metadata());
  }
}

// ---- tensor-parallel parameter table -------------------------------------------------------------

TEST(ParamTable, SplitsThirtyFourHeadsOverFourRanksUnevenly) {
  const ModelConfig config = t6_config(12, 768, 34);
  const int64_t expected_heads[] = {9, 9, 8, 8};
  int64_t first_head = 0;
  for (int rank = 0; rank < 4; ++rank) {
    SCOPED_TRACE(::testing::Message() << "tp rank " << rank);
    const ParamTable table(config, rank, 4);
    const int64_t heads = expected_heads[rank];
    EXPECT_EQ(table.heads().first_head, first_head);
    EXPECT_EQ(table.heads().local_heads, heads);

    // W_A_q: rows h·Rq + r, so a rank owns Rq = 6 consecutive rows per head.
    const LocalParam& a_q = table.find("transformer.h.0.attn.c_qkv.W_A_q.weight");
    EXPECT_EQ(a_q.local_shape, Shape({heads * 6, 768}));
    EXPECT_EQ(a_q.axis_offset, first_head * 6);
    const LocalParam& a_k = table.find("transformer.h.11.attn.c_qkv.W_A_k.weight");
    EXPECT_EQ(a_k.local_shape, Shape({heads * 2, 768}));
    EXPECT_EQ(a_k.axis_offset, first_head * 2);
    // c_proj (d × H·D) is split along its input columns, D per head.
    const LocalParam& proj = table.find("transformer.h.0.attn.c_proj.weight");
    EXPECT_EQ(proj.spec.rule.axis, 1);
    EXPECT_EQ(proj.local_shape, Shape({768, heads * 64}));
    EXPECT_EQ(proj.axis_offset, first_head * 64);

    // W_B_* are shared by all heads: every rank holds all of it, and its gradient is a partial sum.
    for (const char* factor : {"W_B_q", "W_B_k", "W_B_v"}) {
      const LocalParam& b = table.find(std::string("transformer.h.3.attn.c_qkv.") + factor + ".weight");
      EXPECT_EQ(b.spec.rule.kind, ShardRule::Kind::Replicated) << factor;
      EXPECT_TRUE(b.spec.rule.partial_gradient) << factor;
      EXPECT_EQ(b.local_shape, b.spec.global_shape) << factor;
    }
    // The MLP splits 2048 hidden units evenly.
    EXPECT_EQ(table.find("transformer.h.0.mlp.c_fc1.weight").local_shape, Shape({512, 768}));
    EXPECT_EQ(table.find("transformer.h.0.mlp.c_proj.weight").local_shape, Shape({768, 512}));
    first_head += heads;
  }
  EXPECT_EQ(first_head, 34);
}

TEST(ParamTable, MoreRanksThanHeadsThrows) {
  EXPECT_THROW(ParamTable(t6_config(12, 768, 34), 0, 35), Error);
  EXPECT_NO_THROW(ParamTable(t6_config(12, 768, 34), 33, 34));
}

TEST(ParamTable, GqaReplicatesKvWhenRanksOutnumberKvHeadsElseSplitsThemWithTheirGroups) {
  const ModelConfig config = fixture_model_config(ModelKind::llama_gqa);  // 6 heads, group 3: KV heads 0 (heads 0-2) and 1 (3-5)

  // tp 4 > 2 KV heads: query heads split 2, 2, 1, 1, every rank keeps both KV heads.
  const int64_t heads_on_four[] = {2, 2, 1, 1};
  for (int rank = 0; rank < 4; ++rank) {
    SCOPED_TRACE(::testing::Message() << "tp 4, rank " << rank);
    const ParamTable table(config, rank, 4);
    EXPECT_TRUE(table.heads().kv_replicated);
    EXPECT_EQ(table.heads().local_heads, heads_on_four[rank]);
    EXPECT_EQ(table.heads().first_kv_head, 0);
    EXPECT_EQ(table.heads().local_kv_heads, 2);
    for (const char* name : {"c_k", "c_v"}) {
      const LocalParam& kv = table.find(std::string("transformer.h.1.attn.") + name + ".weight");
      EXPECT_EQ(kv.spec.rule.kind, ShardRule::Kind::Replicated) << name;
      EXPECT_TRUE(kv.spec.rule.partial_gradient) << name;
      EXPECT_EQ(kv.local_shape, Shape({2 * 16, 64})) << name;
    }
    EXPECT_EQ(table.find("transformer.h.0.attn.c_q.weight").local_shape, Shape({heads_on_four[rank] * 16, 64}));
  }

  // tp 2 = 2 KV heads: rank r owns KV head r and its three query heads.
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE(::testing::Message() << "tp 2, rank " << rank);
    const ParamTable table(config, rank, 2);
    EXPECT_FALSE(table.heads().kv_replicated);
    EXPECT_EQ(table.heads().first_head, 3 * rank);
    EXPECT_EQ(table.heads().local_heads, 3);
    EXPECT_EQ(table.heads().first_kv_head, rank);
    EXPECT_EQ(table.heads().local_kv_heads, 1);
    const LocalParam& c_k = table.find("transformer.h.0.attn.c_k.weight");
    EXPECT_EQ(c_k.spec.rule.kind, ShardRule::Kind::Split);
    EXPECT_FALSE(c_k.spec.rule.partial_gradient);
    EXPECT_EQ(c_k.local_shape, Shape({16, 64}));
    EXPECT_EQ(c_k.axis_offset, 16 * rank);
    const LocalParam& c_q = table.find("transformer.h.0.attn.c_q.weight");
    EXPECT_EQ(c_q.local_shape, Shape({3 * 16, 64}));
    EXPECT_EQ(c_q.axis_offset, 3 * 16 * rank);
    const LocalParam& proj = table.find("transformer.h.0.attn.c_proj.weight");
    EXPECT_EQ(proj.local_shape, Shape({64, 3 * 16}));
    EXPECT_EQ(proj.axis_offset, 3 * 16 * rank);
  }
}

TEST(ModelConfigDifferences, NameEachDifferingKeyWithBothValues) {
  const ModelConfig t6 = fixture_model_config(ModelKind::T6);
  EXPECT_EQ(model_config_differences(t6, "checkpoint", t6, "run"), "");
  ModelConfig deeper = t6;
  deeper.n_layer = 3;
  EXPECT_EQ(model_config_differences(t6, "checkpoint", deeper, "run"), "model.n_layer (checkpoint 2, run 3)");
  const std::string kinds = model_config_differences(t6, "file", fixture_model_config(ModelKind::llama_mha), "given");
  EXPECT_NE(kinds.find("model.kind (file T6, given llama_mha)"), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("model.n_head (file 6, given 4)"), std::string::npos) << kinds;
}

// ---- MLA (docs/MODEL.md 3.1) --------------------------------------------------------------------------

namespace {

ModelConfig mla_small() {
  ModelConfig config;  // the latent defaults are the paper's small settings: Dr 32, Cq 512, Ckv 256, Dv 64
  config.kind = ModelKind::llama_mla;
  config.n_layer = 12;
  config.n_embd = 768;
  config.n_head = 13;
  config.head_dim = 64;
  return config;
}

}  // namespace

TEST(MlaConfig, SmallHasTheSpecsParameterCount) {
  EXPECT_EQ(millions(mla_small().parameter_count()), "123.09");
  // By hand, per layer: q_a_proj 512·768 + q_a_layernorm 512 + q_b_proj 13·96·512 + kv_a_proj_with_mqa
  // 288·768 + kv_a_layernorm 256 + kv_b_proj 13·128·256 + c_proj 768·13·64, and the MLP 3·768·2048.
  const int64_t attention = 393216 + 512 + 638976 + 221184 + 256 + 425984 + 638976;
  EXPECT_EQ(mla_small().parameter_count(), 38633472 + 12 * (attention + 4718592));
  // The table's shapes add up to the same count.
  int64_t table_count = 0;
  for (const ParamSpec& spec : model_param_specs(mla_small())) table_count += spec.global_shape.numel();
  EXPECT_EQ(table_count, mla_small().parameter_count());
}

TEST(MlaConfig, ValidateRejectsImpossibleLatentValuesNamingTheKey) {
  EXPECT_EQ(validation_error(mla_small()), "");
  ModelConfig odd_nope = mla_small();
  odd_nope.head_dim = 7;  // only the rope part is rotated: an odd head_dim is fine
  EXPECT_EQ(validation_error(odd_nope), "");

  const std::pair<const char*, int64_t ModelConfig::*> keys[] = {
      {"model.qk_rope_head_dim", &ModelConfig::qk_rope_head_dim}, {"model.q_lora_rank", &ModelConfig::q_lora_rank},
      {"model.kv_lora_rank", &ModelConfig::kv_lora_rank},        {"model.v_head_dim", &ModelConfig::v_head_dim},
      {"model.head_dim", &ModelConfig::head_dim}};
  for (const auto& [key, member] : keys) {
    ModelConfig zero = mla_small();
    zero.*member = 0;
    EXPECT_NE(validation_error(zero).find(key), std::string::npos) << key << ": " << validation_error(zero);
  }
  ModelConfig odd_rope = mla_small();
  odd_rope.qk_rope_head_dim = 31;  // RoPE rotates two halves
  EXPECT_NE(validation_error(odd_rope).find("model.qk_rope_head_dim"), std::string::npos) << validation_error(odd_rope);
}

TEST(MlaConfig, MetadataCarriesTheLatentKeys) {
  ModelConfig config = fixture_model_config(ModelKind::llama_mla);
  config.v_head_dim = 12;
  const auto metadata = config.to_metadata();
  EXPECT_EQ(metadata.at("qk_rope_head_dim"), "8");
  EXPECT_EQ(metadata.at("q_lora_rank"), "24");
  EXPECT_EQ(metadata.at("kv_lora_rank"), "16");
  EXPECT_EQ(metadata.at("v_head_dim"), "12");
  const ModelConfig back = ModelConfig::from_metadata(metadata, "round trip");
  EXPECT_EQ(back.to_metadata(), metadata);
  EXPECT_EQ(back.v_head_dim, 12);
  // Other kinds carry no latent keys.
  EXPECT_EQ(fixture_model_config(ModelKind::T6).to_metadata().count("q_lora_rank"), 0u);

  auto missing = metadata;
  missing.erase("kv_lora_rank");
  try {
    ModelConfig::from_metadata(missing, "mla.safetensors");
    ADD_FAILURE() << "a missing kv_lora_rank was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("kv_lora_rank"), std::string::npos) << error.what();
  }
  ModelConfig other = config;
  other.q_lora_rank = 32;
  EXPECT_EQ(model_config_differences(config, "checkpoint", other, "run"), "model.q_lora_rank (checkpoint 24, run 32)");
}

TEST(MlaParamTable, ReferenceOrderAndTensorParallelRules) {
  const ModelConfig config = mla_small();
  const int64_t Dn = 64, Dr = 32, Dv = 64, Cq = 512, Ckv = 256;
  std::vector<std::string> layer_names;
  for (const ParamSpec& spec : model_param_specs(config))
    if (spec.name.rfind("transformer.h.0.", 0) == 0) layer_names.push_back(spec.name.substr(16));
  const std::vector<std::string> reference_order = {
      "attn.q_a_proj.weight",  "attn.q_a_layernorm.weight", "attn.q_b_proj.weight", "attn.kv_a_layernorm.weight",
      "attn.kv_a_proj_with_mqa.weight", "attn.kv_b_proj.weight", "attn.c_proj.weight", "mlp.c_fc1.weight",
      "mlp.c_fc2.weight", "mlp.c_proj.weight"};
  EXPECT_EQ(layer_names, reference_order);

  const int64_t expected_heads[] = {4, 3, 3, 3};  // 13 heads on 4 ranks
  int64_t first_head = 0;
  for (int rank = 0; rank < 4; ++rank) {
    SCOPED_TRACE(::testing::Message() << "tp rank " << rank);
    const ParamTable table(config, rank, 4);
    const int64_t heads = expected_heads[rank];
    const std::string attn = "transformer.h.5.attn.";
    const LocalParam& q_b = table.find(attn + "q_b_proj.weight");
    EXPECT_EQ(q_b.local_shape, Shape({heads * (Dn + Dr), Cq}));
    EXPECT_EQ(q_b.axis_offset, first_head * (Dn + Dr));
    const LocalParam& kv_b = table.find(attn + "kv_b_proj.weight");
    EXPECT_EQ(kv_b.local_shape, Shape({heads * (Dn + Dv), Ckv}));
    EXPECT_EQ(kv_b.axis_offset, first_head * (Dn + Dv));
    const LocalParam& proj = table.find(attn + "c_proj.weight");
    EXPECT_EQ(proj.spec.rule.axis, 1);
    EXPECT_EQ(proj.local_shape, Shape({768, heads * Dv}));
    EXPECT_EQ(proj.axis_offset, first_head * Dv);
    // The latents are computed in full on every rank; each rank's gradient holds its heads' share.
    for (const char* name : {"q_a_proj", "q_a_layernorm", "kv_a_proj_with_mqa", "kv_a_layernorm"}) {
      const LocalParam& shared = table.find(attn + name + ".weight");
      EXPECT_EQ(shared.spec.rule.kind, ShardRule::Kind::Replicated) << name;
      EXPECT_TRUE(shared.spec.rule.partial_gradient) << name;
      EXPECT_EQ(shared.local_shape, shared.spec.global_shape) << name;
    }
    EXPECT_EQ(table.find(attn + "kv_a_proj_with_mqa.weight").local_shape, Shape({Ckv + Dr, 768}));
    EXPECT_EQ(table.find(attn + "q_a_layernorm.weight").local_shape, Shape({Cq}));
    first_head += heads;
  }
  EXPECT_EQ(first_head, 13);
}
