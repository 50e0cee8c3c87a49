// TPA attention with RoPE inside: the choice between the fused CUDA kernels and the materialised
// path (rotated copies of B_q and B_k, tpa_attention_* over q/k/v in the workspace, then RoPEᵀ),
// which CPU tensors always take.
#include <utility>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {

namespace {

bool runs_fused(const Tensor& probe, const TpaAttentionChoice& choice) {
  T6_CHECK(choice.heads_per_block >= 0, "tpa_rotary_attention: heads_per_block ", choice.heads_per_block,
           " is negative");
  return choice.path == TpaAttentionPath::Fused && probe.device() == Device::CUDA;
}

// The workspace as the materialised path splits it: tpa_attention's part, then room for the
// rotated B_q and B_k in the factors' own dtype.
struct MaterialisedWorkspace {
  Tensor attention, rotated_B_q, rotated_B_k;
};

MaterialisedWorkspace split_workspace(const Tensor& workspace, const TpaFactors& f, const Tensor& y) {
  const int64_t B = y.size(0), T = y.size(1), H = y.size(2), D = y.size(3);
  const int64_t attention_elements = tpa_attention_workspace_elements(B, T, H, D);
  T6_CHECK(workspace.numel() >= tpa_rotary_attention_workspace_elements(B, T, H, f.B_q.size(2), f.B_k.size(2), D),
           "tpa_rotary_attention: workspace of ", workspace.numel(), " elements is too small");
  T6_CHECK(dtype_size(f.B_q.dtype()) <= dtype_size(workspace.dtype()) &&
               dtype_size(f.B_k.dtype()) <= dtype_size(workspace.dtype()),
           "tpa_rotary_attention: the workspace's ", dtype_name(workspace.dtype()), " is narrower than the factors");
  char* rest = static_cast<char*>(workspace.raw()) + attention_elements * int64_t(dtype_size(workspace.dtype()));
  const Tensor rotated_B_q(rest, f.B_q.shape(), f.B_q.dtype(), workspace.device());
  const Tensor rotated_B_k(rest + f.B_q.bytes(), f.B_k.shape(), f.B_k.dtype(), workspace.device());
  return {Tensor(workspace.raw(), {attention_elements}, workspace.dtype(), workspace.device()), rotated_B_q,
          rotated_B_k};
}

// The factors with B_q and B_k replaced by their rotated copies.
TpaFactors rotated_factors(const TpaFactors& f, const MaterialisedWorkspace& parts, const Tensor& cos,
                           const Tensor& sin) {
  // Copies by ops (0 + x is exact), which stay on the stream where copy_tensor would synchronise.
  for (const auto& [copy, factor] : {std::pair{parts.rotated_B_q, f.B_q}, std::pair{parts.rotated_B_k, f.B_k}}) {
    fill_zero(copy);
    add(copy, copy, factor);
  }
  rope_forward(parts.rotated_B_q, cos, sin);
  rope_forward(parts.rotated_B_k, cos, sin);
  return {f.A_q, parts.rotated_B_q, f.A_k, parts.rotated_B_k, f.A_v, f.B_v};
}

}  // namespace

int64_t tpa_rotary_attention_workspace_elements(int64_t B, int64_t T, int64_t H, int64_t Rq, int64_t R, int64_t D) {
  return tpa_attention_workspace_elements(B, T, H, D) + B * T * (Rq + R) * D;
}

void tpa_rotary_attention_forward(Tensor y, Tensor lse, const TpaFactors& f, const Tensor& cos, const Tensor& sin,
                                  Tensor workspace, TpaAttentionChoice choice) {
#ifdef T6_WITH_CUDA
  if (runs_fused(y, choice)) return cuda::tpa_attention_fused_forward(y, lse, f, cos, sin, choice.heads_per_block);
#else
  runs_fused(y, choice);
#endif
  const MaterialisedWorkspace parts = split_workspace(workspace, f, y);
  tpa_attention_forward(y, lse, rotated_factors(f, parts, cos, sin), parts.attention);
}

void tpa_rotary_attention_backward(const TpaFactors& gradients, const Tensor& dy, const Tensor& y, const Tensor& lse,
                                   const TpaFactors& f, const Tensor& cos, const Tensor& sin, Tensor workspace,
                                   TpaAttentionChoice choice) {
#ifdef T6_WITH_CUDA
  if (runs_fused(y, choice)) return cuda::tpa_attention_fused_backward(gradients, dy, y, lse, f, cos, sin);
#else
  runs_fused(y, choice);
#endif
  const MaterialisedWorkspace parts = split_workspace(workspace, f, y);
  tpa_attention_backward(gradients, dy, y, lse, rotated_factors(f, parts, cos, sin), parts.attention);
  rope_backward(gradients.B_q, cos, sin);
  rope_backward(gradients.B_k, cos, sin);
}

}  // namespace t6::ops
