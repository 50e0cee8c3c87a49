// MLA's attention at generation time over its latent cache (docs/MODEL.md 3.1): each token keeps only
// its normed key/value latent N_w(c) (Ckv) and its rotated k_pe (Dr), Ckv + Dr numbers per layer.
// kv_b_proj is absorbed instead of expanding keys and values: with W_k[h] (Dn × Ckv) and W_v[h]
// (Dv × Ckv) head h's rows of kv_b_proj,
//   q_h · k_h[t] = (W_k[h]ᵀ q_nope_h) · N_w(c_t) + q_pe_h · k_pe[t]   and
//   Σ_t p[h, t] v_h[t] = W_v[h] · Σ_t p[h, t] N_w(c_t),
// so attention is multi-query attention with one key row [N_w(c_t), k_pe[t]] per token, read once
// for all heads, and values that are the latents themselves.
#pragma once
#include <memory>

#include "infer/attention_step.h"

namespace t6::infer {

std::unique_ptr<AttentionStep> make_mla_step(const ModelWeights& weights, int64_t layer);

}  // namespace t6::infer
