// Model weights (src/model/model_weights.*, src/model/param_table.h): initialisation as docs/MODEL.md 2.2
// (bounds and the statistics of a uniform draw), independent of the tensor-parallel layout (every
// rank's slice equals the same slice of the single-rank model, exactly), seeded, and the flat
// buffer's layout and zero padding.
#include <gtest/gtest.h>

#include "common/error_expectations.h"
#include "common/training_setup.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model_weights.h"

using namespace t6;
using namespace t6::testing;

namespace {

ModelConfig t6_config() { return fixture_model_config(ModelKind::T6); }
ModelConfig gqa_config() { return fixture_model_config(ModelKind::llama_gqa); }
ModelConfig kvonly_config() { return fixture_model_config(ModelKind::T6_kvonly); }
ModelConfig mha_config() { return fixture_model_config(ModelKind::llama_mha); }
ModelConfig mla_config() { return fixture_model_config(ModelKind::llama_mla); }

std::vector<float> values_of(const Tensor& tensor) {
  const float* data = tensor.data<float>();
  return {data, data + tensor.numel()};
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// docs/MODEL.md 2.2 (and section 3 for the baselines), computed here from the config and the name,
// independently of the parameter table. 0 means zero-initialised. -1 for a name the spec does not
// know (a test failure).
double spec_bound(const ModelConfig& c, const std::string& name) {
  const double d = double(c.n_embd), H = double(c.n_head), D = double(c.head_dim);
  const double R = double(c.rank), Rq = double(c.q_rank);
  if (name == "transformer.wte.weight") return 1 / std::sqrt(d);
  if (ends_with(name, "attn.c_proj.weight") || ends_with(name, "mlp.c_proj.weight")) return 0;
  if (ends_with(name, "mlp.c_fc1.weight") || ends_with(name, "mlp.c_fc2.weight")) return 1 / std::sqrt(d);
  if (ends_with(name, "c_qkv.W_A_q.weight")) return std::sqrt(6 / (Rq * (H + d)));
  if (ends_with(name, "c_qkv.W_A_k.weight") || ends_with(name, "c_qkv.W_A_v.weight")) return std::sqrt(6 / (R * (H + d)));
  if (ends_with(name, "c_qkv.W_B_q.weight")) return std::sqrt(6 / (D * (Rq + d)));
  if (ends_with(name, "c_qkv.W_B_k.weight") || ends_with(name, "c_qkv.W_B_v.weight")) return std::sqrt(6 / (D * (R + d)));
  if (ends_with(name, "c_qkv.c_q.weight")) return std::sqrt(6 / (d + H * D));
  if (ends_with(name, "attn.c_q.weight") || ends_with(name, "attn.c_k.weight") || ends_with(name, "attn.c_v.weight"))
    return 1 / std::sqrt(d);
  // MLA (docs/MODEL.md 3.1): torch's default Linear init, ±1/sqrt(fan_in).
  if (ends_with(name, "attn.q_a_proj.weight") || ends_with(name, "attn.kv_a_proj_with_mqa.weight")) return 1 / std::sqrt(d);
  if (ends_with(name, "attn.q_b_proj.weight")) return 1 / std::sqrt(double(c.q_lora_rank));
  if (ends_with(name, "attn.kv_b_proj.weight")) return 1 / std::sqrt(double(c.kv_lora_rank));
  return -1;
}

// Slice of the full tensor that `entry` should hold, computed row by row from the entry's offset
// along its split axis (not through global_element_index or copy_local_slice, whose bugs would
// cancel out in a comparison against themselves).
std::vector<float> slice_by_hand(const LocalParam& entry, const std::vector<float>& full) {
  if (entry.spec.rule.kind == ShardRule::Kind::Replicated) return full;
  const int64_t rows = entry.local_shape[0], cols = entry.local_shape[1], full_cols = entry.spec.global_shape[1];
  const int64_t row_offset = entry.spec.rule.axis == 0 ? entry.axis_offset : 0;
  const int64_t col_offset = entry.spec.rule.axis == 1 ? entry.axis_offset : 0;
  std::vector<float> slice;
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t col = 0; col < cols; ++col) slice.push_back(full[(row + row_offset) * full_cols + col + col_offset]);
  return slice;
}

// Every rank of a tp layout initialised from `seed` holds exactly its slice of the tp = 1 model,
// and the ranks' slices of each split weight tile its axis without gaps or overlaps.
void expect_layout_independent(const ModelConfig& config, int tp, uint64_t seed) {
  ModelWeights whole(config, 0, 1);
  whole.initialise(seed);
  // Per parameter: where the next rank's slice must start along its split axis.
  std::vector<int64_t> next_offset(whole.table().params().size(), 0);
  for (int rank = 0; rank < tp; ++rank) {
    ModelWeights part(config, rank, tp);
    part.initialise(seed);
    const auto& params = part.table().params();
    ASSERT_EQ(params.size(), whole.table().params().size());
    for (size_t i = 0; i < params.size(); ++i) {
      const LocalParam& entry = params[i];
      SCOPED_TRACE(entry.spec.name + " on rank " + std::to_string(rank) + " of " + std::to_string(tp));
      const std::vector<float> full = values_of(whole.param(entry.spec.name));
      const std::vector<float> local = values_of(part.param(entry));

      std::vector<float> expected(size_t(entry.numel()));
      copy_local_slice(entry, full.data(), expected.data());
      ASSERT_EQ(local, expected);
      ASSERT_EQ(local, slice_by_hand(entry, full));

      if (entry.spec.rule.kind == ShardRule::Kind::Split) {
        const int axis = entry.spec.rule.axis;
        int64_t& next = next_offset[i];
        ASSERT_EQ(entry.axis_offset, next) << "slices must follow each other along axis " << axis;
        next += entry.local_shape[axis];
        if (rank == tp - 1) { ASSERT_EQ(next, entry.spec.global_shape[axis]) << "slices must cover the whole axis"; }
      }
    }
  }
}

struct Moments {
  double max_abs = 0, mean = 0, variance = 0;
};
Moments moments_of(const std::vector<float>& values) {
  Moments result;
  double sum = 0, sum_squares = 0;
  for (float value : values) {
    result.max_abs = std::max(result.max_abs, double(std::fabs(value)));
    sum += value;
    sum_squares += double(value) * value;
  }
  const double n = double(values.size());
  result.mean = sum / n;
  result.variance = sum_squares / n - result.mean * result.mean;
  return result;
}

// Every parameter of `config` at tp = 1 is zero or uniform in ±(its spec bound), with the moments of
// a uniform draw: max |w| near the bound, mean 0 and variance bound²/3 within 5 standard errors.
void expect_spec_initialisation(const ModelConfig& config) {
  ModelWeights weights(config, 0, 1);
  weights.initialise(2024);
  for (const LocalParam& entry : weights.table().params()) {
    SCOPED_TRACE(entry.spec.name);
    const std::vector<float> values = values_of(weights.param(entry));
    if (ends_with(entry.spec.name, "layernorm.weight")) {  // MLA's latent norm weights start at one
      EXPECT_TRUE(std::all_of(values.begin(), values.end(), [](float v) { return v == 1.0f; })) << "must be one";
      continue;
    }
    const double bound = spec_bound(config, entry.spec.name);
    ASSERT_GE(bound, 0) << "a parameter docs/MODEL.md does not name";
    if (bound == 0) {
      EXPECT_TRUE(std::all_of(values.begin(), values.end(), [](float v) { return v == 0.0f; })) << "must be zero";
      continue;
    }
    EXPECT_NEAR(entry.spec.init_bound, bound, bound * 1e-6) << "the table's bound";
    const double n = double(values.size());
    const Moments moments = moments_of(values);
    EXPECT_LE(moments.max_abs, double(entry.spec.init_bound));
    // P(all n draws below (1 − 20/n)·bound) ≈ e^-20.
    EXPECT_GE(moments.max_abs, bound * (1 - 20 / n)) << "the draw does not reach its bound";
    // Uniform on ±b: variance b²/3; the sample mean has s.e. b/sqrt(3n), the sample variance
    // s.e. b²·sqrt(4/45)/sqrt(n).
    EXPECT_NEAR(moments.mean, 0.0, 5 * bound / std::sqrt(3 * n));
    EXPECT_NEAR(moments.variance, bound * bound / 3, 5 * bound * bound * std::sqrt(4.0 / 45) / std::sqrt(n));
  }
}

}  // namespace

// ---- layout independence -----------------------------------------------------------------------

TEST(ModelWeightsLayout, T6SlicesEqualTheSingleRankModel) {
  for (int tp : {2, 3, 4}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    expect_layout_independent(t6_config(), tp, 42);
  }
}

TEST(ModelWeightsLayout, GqaSlicesEqualTheSingleRankModel) {
  // tp 2 splits the 2 KV heads with their query groups; tp 3 and 4 (more ranks than KV heads)
  // replicate c_k/c_v and split queries by head.
  for (int tp : {2, 3, 4}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    expect_layout_independent(gqa_config(), tp, 42);
  }
}

TEST(ModelWeightsLayout, KvOnlyMhaAndMlaSlicesEqualTheSingleRankModel) {
  for (int tp : {2, 3, 4}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    expect_layout_independent(kvonly_config(), tp, 7);  // 5 heads: uneven splits
    expect_layout_independent(mha_config(), tp, 7);
    expect_layout_independent(mla_config(), tp, 7);  // 4 heads on 3 ranks: 2, 1, 1
  }
}

TEST(ModelWeightsLayout, SplitWeightsReallyDifferBetweenRanks) {
  // Guards the tests above against a trivial pass: rank 1's W_A_q slice is not rank 0's.
  ModelWeights rank0(t6_config(), 0, 2), rank1(t6_config(), 1, 2);
  rank0.initialise(42);
  rank1.initialise(42);
  const std::string name = "transformer.h.0.attn.c_qkv.W_A_q.weight";
  EXPECT_NE(values_of(rank0.param(name)), values_of(rank1.param(name)));
  // The vocab-parallel embedding is split too; the replicated W_B factors are the same everywhere.
  EXPECT_NE(values_of(rank0.param("transformer.wte.weight")), values_of(rank1.param("transformer.wte.weight")));
  const std::string replicated = "transformer.h.0.attn.c_qkv.W_B_q.weight";
  EXPECT_EQ(values_of(rank0.param(replicated)), values_of(rank1.param(replicated)));
}

// ---- initialisation values ---------------------------------------------------------------------

TEST(ModelWeightsInit, T6BoundsAndMomentsFollowTheSpec) {
  ModelConfig config = t6_config();
  config.vocab_size = 4096;  // a 4096 × 64 embedding: a large sample for the variance check
  expect_spec_initialisation(config);
}

TEST(ModelWeightsInit, BaselineBoundsAndMomentsFollowTheSpec) {
  for (const ModelConfig& config : {kvonly_config(), mha_config(), gqa_config(), mla_config()}) {
    SCOPED_TRACE(model_kind_name(config.kind));
    expect_spec_initialisation(config);
  }
}

TEST(ModelWeightsInit, SameSeedSameWeightsOtherSeedOtherWeights) {
  ModelWeights first(t6_config(), 0, 1), again(t6_config(), 0, 1), other(t6_config(), 0, 1);
  first.initialise(1);
  again.initialise(1);
  other.initialise(2);
  EXPECT_EQ(values_of(first.params()), values_of(again.params()));
  for (const LocalParam& entry : first.table().params()) {
    if (entry.spec.init == InitKind::Zero) continue;
    const std::vector<float> a = values_of(first.param(entry)), b = values_of(other.param(entry));
    const auto equal = std::inner_product(a.begin(), a.end(), b.begin(), size_t(0), std::plus<>(), std::equal_to<>());
    EXPECT_LT(equal, a.size() / 100 + 1) << entry.spec.name << ": seed 2 repeats seed 1";
  }
}

TEST(ModelWeightsInit, ParametersAreNotCopiesOfEachOther) {
  // Each parameter has its own stream: W_A_k and W_A_v have the same shape and bound but must differ,
  // and so must layer 0 and layer 1.
  ModelWeights weights(t6_config(), 0, 1);
  weights.initialise(5);
  EXPECT_NE(values_of(weights.param("transformer.h.0.attn.c_qkv.W_A_k.weight")),
            values_of(weights.param("transformer.h.0.attn.c_qkv.W_A_v.weight")));
  EXPECT_NE(values_of(weights.param("transformer.h.0.mlp.c_fc1.weight")),
            values_of(weights.param("transformer.h.1.mlp.c_fc1.weight")));
}

// ---- flat buffer and padding -------------------------------------------------------------------

TEST(ModelWeightsBuffer, ParametersLieBackToBackInTableOrder) {
  ModelWeights weights(t6_config(), 1, 3);
  int64_t offset = 0;
  const float* base = weights.params().data<float>();
  for (const LocalParam& entry : weights.table().params()) {
    EXPECT_EQ(entry.flat_offset, offset) << entry.spec.name;
    EXPECT_EQ(weights.param(entry).data<float>(), base + offset) << entry.spec.name;
    EXPECT_EQ(weights.param(entry).shape(), entry.local_shape) << entry.spec.name;
    offset += entry.numel();
  }
  EXPECT_EQ(offset, weights.table().local_numel());
  EXPECT_EQ(weights.params().numel(), offset);
  EXPECT_EQ(weights.padded_numel(), offset) << "pad_multiple 1 pads nothing";
}

TEST(ModelWeightsBuffer, PaddingIsZeroAndOutsideParams) {
  for (int tp : {1, 2}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    ModelWeights weights(t6_config(), tp - 1, tp, 1000);
    const int64_t used = weights.table().local_numel();
    ASSERT_NE(used % 1000, 0) << "the test needs a size that is not already a multiple";
    EXPECT_EQ(weights.padded_numel() % 1000, 0);
    EXPECT_GE(weights.padded_numel(), used);
    EXPECT_LT(weights.padded_numel(), used + 1000);
    EXPECT_EQ(weights.params().numel(), used);
    EXPECT_EQ(weights.grads().numel(), used);
    EXPECT_EQ(weights.padded_params().numel(), weights.padded_numel());
    EXPECT_EQ(weights.params().data<float>(), weights.padded_params().data<float>());

    weights.initialise(3);
    const std::vector<float> padded = values_of(weights.padded_params());
    EXPECT_TRUE(std::all_of(padded.begin() + used, padded.end(), [](float v) { return v == 0.0f; }))
        << "initialise must leave the padded tail zero";
    EXPECT_TRUE(std::any_of(padded.begin(), padded.begin() + used, [](float v) { return v != 0.0f; }));

    // zero_grads clears the whole padded gradient buffer, tail included.
    const Tensor grads = weights.padded_grads();
    std::fill(grads.data<float>(), grads.data<float>() + grads.numel(), 5.0f);
    weights.zero_grads();
    const std::vector<float> cleared = values_of(grads);
    EXPECT_TRUE(std::all_of(cleared.begin(), cleared.end(), [](float v) { return v == 0.0f; }));
  }
}

TEST(ModelWeightsBuffer, PaddedLayoutInitialisesTheSameWeights) {
  ModelWeights plain(gqa_config(), 0, 1), padded(gqa_config(), 0, 1, 4096);
  plain.initialise(11);
  padded.initialise(11);
  EXPECT_EQ(values_of(plain.params()), values_of(padded.params()));
}

// ---- TPA's factor maps as one matrix -------------------------------------------------------------

// The five or six factor-map weights of a TPA layer, in table order, are one (Σ, d) matrix of this
// rank: the A factors' rows of its heads, then the replicated B factors' rows, Σ = h·(Rq + 2R) +
// (Rq + 2R)·D for h local heads (KVonly: c_q's h·D rows, then 2R(h + D)). The stacked view is the
// same memory as the named parameters, for the weights and for the gradients, at every TP layout.
TEST(ModelWeightsBuffer, TpaFactorMapsAreOneStackedMatrixOfTheNamedWeights) {
  struct Layout {
    ModelConfig config;
    int tp_rank, tp_size;
  };
  for (const Layout& layout : {Layout{t6_config(), 0, 1}, Layout{t6_config(), 1, 2}, Layout{t6_config(), 3, 4},
                               Layout{kvonly_config(), 0, 1}, Layout{kvonly_config(), 1, 2}}) {
    const ModelConfig& c = layout.config;
    const bool factorised_query = c.kind == ModelKind::T6;
    SCOPED_TRACE(str(factorised_query ? "T6" : "KVonly", " tp rank ", layout.tp_rank, " of ", layout.tp_size));
    ModelWeights weights(c, layout.tp_rank, layout.tp_size);
    weights.initialise(5);
    const int64_t h = balanced_range(c.n_head, layout.tp_size, layout.tp_rank).size(), D = c.head_dim, R = c.rank;
    const int64_t rows = factorised_query ? (h + D) * (c.q_rank + 2 * R) : h * D + 2 * R * (h + D);
    std::vector<std::string> names;
    for (const char* map : factorised_query ? std::vector<const char*>{"W_A_q", "W_A_k", "W_A_v", "W_B_q", "W_B_k", "W_B_v"}
                                            : std::vector<const char*>{"c_q", "W_A_k", "W_A_v", "W_B_k", "W_B_v"})
      names.push_back(str("transformer.h.1.attn.c_qkv.", map, ".weight"));

    const Tensor stacked = weights.stacked_matmul_params(names), stacked_grads = weights.stacked_grads(names);
    EXPECT_EQ(stacked.shape(), Shape({rows, c.n_embd}));
    EXPECT_EQ(stacked_grads.shape(), Shape({rows, c.n_embd}));
    int64_t offset = 0;
    for (const std::string& name : names) {
      EXPECT_EQ(weights.param(name).data<float>(), stacked.data<float>() + offset) << name;
      EXPECT_EQ(weights.grad(name).data<float>(), stacked_grads.data<float>() + offset) << name;
      offset += weights.param(name).numel();
    }
    EXPECT_EQ(offset, stacked.numel());

    // Out of table order (the B factors before the A ones), or with a gap, is refused by name.
    std::vector<std::string> reordered = names;
    std::swap(reordered.front(), reordered.back());
    const std::string message = t6::testing::error_of([&] { weights.stacked_matmul_params(reordered); });
    EXPECT_NE(message.find("does not follow"), std::string::npos) << message;
    EXPECT_THROW(weights.stacked_grads({names[0], names[2]}), Error);
  }
}
