// matmul on the GPU through cuBLASLt: bf16 or fp32 inputs, fp32 accumulation (CUBLAS_COMPUTE_32F,
// never TF32), bf16 or fp32 output, beta accumulating into an existing output (fp32 gradients over
// micro-batches). The algorithm is chosen once per shape (cuBLASLt's first heuristic) and kept in a
// per-thread plan cache, so a run repeats bit for bit and no heuristic runs inside a steady step.
// The heuristic is told each operand's real alignment (a view into an arena may sit at any
// element), and plans are keyed by it too: an algorithm chosen for 256-byte aligned operands is
// never run on less aligned ones. beta accumulates into out, so a beta ≠ 0 needs an F32 out.
#include <cstdint>
#include <map>
#include <utility>
#include <tuple>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"

namespace t6::ops::cuda {

namespace {

cudaDataType_t cuda_type(const char* op, const Tensor& x) {
  float_ref(op, x);
  return x.dtype() == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

// Row-major out (M, N) = op(a) · op(b) is column-major outᵀ (N, M) = op(b)ᵀ · op(a)ᵀ: cuBLASLt gets
// b as its first operand and a as its second, with the same transpose flags.
struct PlanKey {
  int64_t M, N, K;
  bool transpose_a, transpose_b, accumulate;
  cudaDataType_t a_type, b_type, out_type;
  uint32_t a_alignment, b_alignment, out_alignment;  // bytes, powers of two up to 256
  auto tied() const {
    return std::tie(M, N, K, transpose_a, transpose_b, accumulate, a_type, b_type, out_type, a_alignment, b_alignment,
                    out_alignment);
  }
  bool operator<(const PlanKey& other) const { return tied() < other.tied(); }
};

struct Plan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t first = nullptr, second = nullptr, out = nullptr;
  cublasLtMatmulAlgo_t algorithm{};
};

// The largest power of two up to 256 (cuBLASLt's default requirement) dividing the address.
uint32_t alignment_of(const void* pointer) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

Plan make_plan(const PlanKey& key, cublasLtHandle_t handle) {
  Plan plan;
  T6_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = key.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = key.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  T6_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first));
  T6_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second));
  // Column-major shapes of the stored matrices: b is (K, N) row-major = (N, K) column-major, etc.
  const int64_t first_rows = key.transpose_b ? key.K : key.N, first_cols = key.transpose_b ? key.N : key.K;
  const int64_t second_rows = key.transpose_a ? key.M : key.K, second_cols = key.transpose_a ? key.K : key.M;
  T6_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.first, key.b_type, uint64_t(first_rows), uint64_t(first_cols), first_rows));
  T6_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.second, key.a_type, uint64_t(second_rows), uint64_t(second_cols), second_rows));
  T6_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.out, key.out_type, uint64_t(key.N), uint64_t(key.M), key.N));

  cublasLtMatmulPreference_t preference = nullptr;
  T6_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace = CudaContext::kBlasWorkspaceBytes;
  T6_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                       sizeof workspace));
  // cuBLASLt's A is our b and its B our a (see PlanKey); C and D are out.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.b_alignment},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.a_alignment},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.out_alignment},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.out_alignment}};
  for (const auto& [attribute, bytes] : alignments)
    T6_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  T6_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, plan.operation, plan.first, plan.second, plan.out, plan.out,
                                                 preference, 1, &result, &found));
  cublasLtMatmulPreferenceDestroy(preference);
  T6_CHECK(found > 0, "matmul: cuBLASLt has no algorithm for (", key.M, ", ", key.K, ") · (", key.K, ", ", key.N, ")");
  plan.algorithm = result.algo;
  return plan;
}

// Plans live as long as the thread (the descriptors are small host objects).
const Plan& plan_for(const PlanKey& key, cublasLtHandle_t handle) {
  thread_local std::map<PlanKey, Plan> plans;
  auto found = plans.find(key);
  if (found == plans.end()) found = plans.emplace(key, make_plan(key, handle)).first;
  return found->second;
}

}  // namespace

void matmul(Tensor out, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha, float beta) {
  const char* op = "matmul";
  const int64_t M = transpose_a ? matrix_cols(a) : matrix_rows(a);
  const int64_t K = transpose_a ? matrix_rows(a) : matrix_cols(a);
  const int64_t K_b = transpose_b ? matrix_cols(b) : matrix_rows(b);
  const int64_t N = transpose_b ? matrix_rows(b) : matrix_cols(b);
  T6_CHECK(K == K_b && out.numel() == M * N, op, ": shapes ", a.shape().to_string(), (transpose_a ? "ᵀ" : ""), " · ",
           b.shape().to_string(), (transpose_b ? "ᵀ" : ""), " → ", out.shape().to_string(), " do not fit");
  const PlanKey key{M,
                    N,
                    K,
                    transpose_a,
                    transpose_b,
                    beta != 0.0f,
                    cuda_type(op, a),
                    cuda_type(op, b),
                    cuda_type(op, out),
                    alignment_of(a.raw()),
                    alignment_of(b.raw()),
                    alignment_of(out.raw())};
  T6_CHECK((key.a_type == CUDA_R_16BF) == (key.b_type == CUDA_R_16BF), op,
           ": both inputs must be BF16 or both F32 (cuBLASLt multiplies like types)");
  T6_CHECK(key.a_type == CUDA_R_16BF || key.out_type == CUDA_R_32F, op, ": F32 inputs need an F32 output");
  T6_CHECK(!key.accumulate || key.out_type == CUDA_R_32F, op, ": beta ", beta,
           " accumulates into out, so it must be F32 (fp32 accumulation of gradients), got BF16");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: out = beta · out
    T6_CHECK(beta == 0.0f || beta == 1.0f, op, ": an empty product with beta ", beta);
    if (beta == 0.0f) fill_zero(out);
    return;
  }
  CudaContext& context = cuda_context();
  const Plan& plan = plan_for(key, context.blas());
  T6_CUBLAS_CHECK(cublasLtMatmul(context.blas(), plan.operation, &alpha, b.raw(), plan.first, a.raw(), plan.second, &beta,
                                 out.raw(), plan.out, out.raw(), plan.out, &plan.algorithm, context.blas_workspace(),
                                 CudaContext::kBlasWorkspaceBytes, context.stream()));
}

}  // namespace t6::ops::cuda
