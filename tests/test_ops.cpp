// The op set (kernels/ops.h) on the CPU backend in double precision: every backward against central
// finite differences of a scalar objective L = Σ w ⊙ out with random w (so dout = w), every forward
// against a simple independent reference, and the error paths.
//
// Tolerances: gradients use kGradientTolerance (1e-6 relative, see common/finite_difference.h for why);
// forwards and exact identities, which involve no finite difference, are held to 1e-12.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "common/error_expectations.h"
#include "common/finite_difference.h"
#include "core/bf16.h"
#include "core/cpu_threads.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/ops.h"

using namespace t6;
using t6::testing::copy_into;
using t6::testing::copy_of;
using t6::testing::dot;
using t6::testing::filled_tensor;
using t6::testing::gradient_matches;
using t6::testing::random_tensor;
using t6::testing::tensors_close;

namespace {

constexpr double kExact = 1e-12;  // forward values and identities: only rounding differences allowed

std::mt19937_64& rng() {
  static std::mt19937_64 generator(20250601);
  return generator;
}

HostTensor token_ids(const std::vector<int32_t>& ids) {
  HostTensor tokens({int64_t(ids.size())}, DType::I32);
  for (size_t i = 0; i < ids.size(); ++i) tokens.data<int32_t>()[i] = ids[i];
  return tokens;
}

// a − b, element-wise: isolates what an accumulating op added to a pre-filled output.
HostTensor difference(const Tensor& a, const Tensor& b) {
  HostTensor out = copy_of(a);
  for (int64_t i = 0; i < out.numel(); ++i) out.data<double>()[i] -= b.data<double>()[i];
  return out;
}

double at(const Tensor& x, int64_t i) { return x.data<double>()[i]; }

}  // namespace

// ---- matmul --------------------------------------------------------------------------------------

// out = α·op(a)·op(b) + β·c0. A linear layer's backward is matmul again with the transposes moved
// around and β = 1 to accumulate into an existing gradient, so the analytic gradients below are
// computed that way (onto a random pre-filled gradient) and compared with finite differences.
TEST(Matmul, ForwardAndGradientsForAllTransposesWithBetaAccumulation) {
  const int64_t M = 3, K = 5, N = 4;
  const float alpha = 0.75f, beta = 0.5f;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "transpose_a " << ta << ", transpose_b " << tb);
      HostTensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, rng());
      HostTensor b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, rng());
      HostTensor c0 = random_tensor({M, N}, rng());
      HostTensor w = random_tensor({M, N}, rng());
      auto op_a = [&](int64_t i, int64_t k) { return ta ? at(a, k * M + i) : at(a, i * K + k); };
      auto op_b = [&](int64_t k, int64_t j) { return tb ? at(b, j * K + k) : at(b, k * N + j); };

      HostTensor out = copy_of(c0);
      ops::matmul(out, a, b, ta, tb, alpha, beta);
      HostTensor expected({M, N}, DType::F64);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double sum = 0;
          for (int64_t k = 0; k < K; ++k) sum += op_a(i, k) * op_b(k, j);
          expected.data<double>()[i * N + j] = alpha * sum + beta * at(c0, i * N + j);
        }
      EXPECT_TRUE(tensors_close(out, expected, kExact, "matmul forward"));

      HostTensor scratch({M, N}, DType::F64);
      auto loss = [&] {
        copy_into(scratch, c0);
        ops::matmul(scratch, a, b, ta, tb, alpha, beta);
        return dot(w, scratch);
      };
      // dop(a) = α·W·op(b)ᵀ and dop(b) = α·op(a)ᵀ·W, written in the stored layouts of a and b.
      HostTensor da_initial = random_tensor(a.shape(), rng()), db_initial = random_tensor(b.shape(), rng());
      HostTensor da = copy_of(da_initial), db = copy_of(db_initial);
      if (!ta) ops::matmul(da, w, b, false, !tb, alpha, 1.0f);
      else ops::matmul(da, b, w, tb, true, alpha, 1.0f);
      if (!tb) ops::matmul(db, a, w, !ta, false, alpha, 1.0f);
      else ops::matmul(db, w, a, true, ta, alpha, 1.0f);
      HostTensor dc0 = copy_of(w);
      for (int64_t i = 0; i < dc0.numel(); ++i) dc0.data<double>()[i] *= beta;

      EXPECT_TRUE(gradient_matches(difference(da, da_initial), a, loss, "da"));
      EXPECT_TRUE(gradient_matches(difference(db, db_initial), b, loss, "db"));
      EXPECT_TRUE(gradient_matches(dc0, c0, loss, "d(c0), the beta term"));
    }
  }
}

// One row in fp32 (a decode step at batch 1) goes through GEMV (kernels/cpu/blas.h) instead of SGEMM:
// every transpose against a double reference, β = 0 ignoring what the output held (NaN here) and
// β ≠ 0 accumulating. fp32 sums of 37 products of numbers in [−1, 1) round within about 1e-5.
TEST(Matmul, OneFp32RowForAllTransposesMatchesDouble) {
  const int64_t K = 37, N = 29;
  const float alpha = 0.75f;
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto random_floats = [&](Shape shape) {
    HostTensor x(shape, DType::F32);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = uniform(rng());
    return x;
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 0.5f}) {
        SCOPED_TRACE(::testing::Message() << "transpose_a " << ta << ", transpose_b " << tb << ", beta " << beta);
        HostTensor a = random_floats(ta ? Shape{K, 1} : Shape{1, K});
        HostTensor b = random_floats(tb ? Shape{N, K} : Shape{K, N});
        HostTensor out = random_floats({1, N});
        if (beta == 0.0f) std::fill_n(out.data<float>(), N, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> before(out.data<float>(), out.data<float>() + N);
        ops::matmul(out, a, b, ta, tb, alpha, beta);
        for (int64_t j = 0; j < N; ++j) {
          double sum = 0;
          for (int64_t k = 0; k < K; ++k) sum += double(a.data<float>()[k]) * b.data<float>()[tb ? j * K + k : k * N + j];
          const double expected = alpha * sum + (beta == 0.0f ? 0.0 : beta * double(before[size_t(j)]));
          const double got = out.data<float>()[j];
          EXPECT_TRUE(std::abs(got - expected) <= 1e-5) << "column " << j << ": " << got << ", expected " << expected;
        }
      }
}

// ---- embedding -----------------------------------------------------------------------------------

TEST(Embedding, ForwardGathersRowsAndBackwardAccumulatesRepeatedIds) {
  const int64_t V = 7, d = 5;
  // Token 3 occurs four times and 1 twice: their gradient rows must be sums; row 4 is never used.
  HostTensor tokens = token_ids({3, 1, 3, 0, 6, 3, 1, 2, 5, 3});
  const int64_t N = tokens.numel();
  HostTensor table = random_tensor({V, d}, rng());
  HostTensor w = random_tensor({2, N / 2, d}, rng());

  HostTensor out({2, N / 2, d}, DType::F64);
  ops::embedding_forward(out, tokens, table);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < d; ++j)
      ASSERT_EQ(at(out, n * d + j), at(table, tokens.data<int32_t>()[n] * d + j)) << "position " << n;

  HostTensor scratch({2, N / 2, d}, DType::F64);
  auto loss = [&] {
    ops::embedding_forward(scratch, tokens, table);
    return dot(w, scratch);
  };
  // embedding_backward adds into dtable (+=): start from random values and compare what it added.
  HostTensor dtable_initial = random_tensor({V, d}, rng());
  HostTensor dtable = copy_of(dtable_initial);
  ops::embedding_backward(dtable, w, tokens);
  EXPECT_TRUE(gradient_matches(difference(dtable, dtable_initial), table, loss, "dtable"));
}

// Vocab-parallel: rows [0, 3), [3, 5), [5, 7) on three "ranks". Each looks up only its own tokens
// (zeros elsewhere), so the outputs sum to the whole lookup; each backward adds only into its rows.
TEST(Embedding, VocabSplitOverRanksSumsToTheWholeLookup) {
  const int64_t V = 7, d = 4;
  const std::vector<int64_t> bounds = {0, 3, 5, 7};
  HostTensor tokens = token_ids({6, 0, 3, 2, 5, 3, 4, 1});
  const int64_t N = tokens.numel();
  HostTensor table = random_tensor({V, d}, rng()), dout = random_tensor({N, d}, rng());
  HostTensor expected({N, d}, DType::F64), expected_dtable({V, d}, DType::F64);
  ops::embedding_forward(expected, tokens, table);
  ops::embedding_backward(expected_dtable, dout, tokens);

  HostTensor summed = filled_tensor({N, d}, 0.0);
  for (size_t rank = 0; rank + 1 < bounds.size(); ++rank) {
    const Tensor rows = table.view().rows(bounds[rank], bounds[rank + 1]);
    HostTensor out = filled_tensor({N, d}, NAN), dtable({bounds[rank + 1] - bounds[rank], d}, DType::F64);
    ops::embedding_forward(out, tokens, rows, {bounds[rank], V});
    for (int64_t i = 0; i < N * d; ++i) summed.data<double>()[i] += at(out, i);
    ops::embedding_backward(dtable, dout, tokens, {bounds[rank], V});
    for (int64_t i = 0; i < dtable.numel(); ++i)
      EXPECT_EQ(at(dtable, i), at(expected_dtable, bounds[rank] * d + i)) << "rank " << rank << " element " << i;
  }
  EXPECT_TRUE(tensors_close(summed, expected, kExact, "sum of the slices' lookups"));
}

// ---- RMSNorm -------------------------------------------------------------------------------------

TEST(RmsNorm, ForwardUsesFp32EpsilonInDouble) {
  const int64_t rows = 4, d = 7;
  HostTensor x = random_tensor({rows, d}, rng());
  // Row 1 is so small (mean x² ≈ 1e-9) that eps dominates: a different eps would show at once.
  for (int64_t j = 0; j < d; ++j) x.data<double>()[d + j] *= 1e-4;
  HostTensor out({rows, d}, DType::F64), rstd({rows}, DType::F64);
  ops::rmsnorm_forward(out, rstd, x);

  const double eps = double(std::numeric_limits<float>::epsilon());  // 1.1920929e-07 = 2^-23
  EXPECT_EQ(eps, 1.1920928955078125e-07);
  HostTensor expected_rstd({rows}, DType::F64), expected_out({rows, d}, DType::F64);
  for (int64_t n = 0; n < rows; ++n) {
    double mean_square = 0;
    for (int64_t j = 0; j < d; ++j) mean_square += at(x, n * d + j) * at(x, n * d + j) / double(d);
    expected_rstd.data<double>()[n] = 1.0 / std::sqrt(mean_square + eps);
    for (int64_t j = 0; j < d; ++j) expected_out.data<double>()[n * d + j] = at(x, n * d + j) * at(expected_rstd, n);
  }
  EXPECT_TRUE(tensors_close(rstd, expected_rstd, kExact, "rstd"));
  EXPECT_TRUE(tensors_close(out, expected_out, kExact, "rmsnorm out"));
}

TEST(RmsNorm, BackwardAccumulatesTheGradient) {
  const int64_t d = 7;
  HostTensor x = random_tensor({2, 5, d}, rng());
  HostTensor w = random_tensor({2, 5, d}, rng());
  HostTensor out({2, 5, d}, DType::F64), rstd({2, 5}, DType::F64);
  ops::rmsnorm_forward(out, rstd, x);

  HostTensor scratch_out({2, 5, d}, DType::F64), scratch_rstd({2, 5}, DType::F64);
  auto loss = [&] {
    ops::rmsnorm_forward(scratch_out, scratch_rstd, x);
    return dot(w, scratch_out);
  };
  // The residual stream's gradient is already in dx when the norm's backward runs: it adds (+=).
  HostTensor dx_initial = random_tensor(x.shape(), rng());
  HostTensor dx = copy_of(dx_initial);
  ops::rmsnorm_backward(dx, w, x, rstd);
  EXPECT_TRUE(gradient_matches(difference(dx, dx_initial), x, loss, "dx"));
}

// ---- weighted RMSNorm (MLA's latent norms) ---------------------------------------------------------

TEST(WeightedRmsNorm, ForwardUsesEps1e6AndScalesByTheWeight) {
  const int64_t rows = 4, d = 7;
  HostTensor x = random_tensor({rows, d}, rng());
  HostTensor weight = random_tensor({d}, rng(), 0.5, 1.5);
  // Row 1 is so small (mean x² ≈ 1e-9) that eps dominates: fp32 epsilon instead of 1e-6 would show.
  for (int64_t j = 0; j < d; ++j) x.data<double>()[d + j] *= 1e-4;
  HostTensor out({rows, d}, DType::F64), rstd({rows}, DType::F64);
  ops::weighted_rmsnorm_forward(out, rstd, x, weight);

  HostTensor expected_rstd({rows}, DType::F64), expected_out({rows, d}, DType::F64);
  for (int64_t n = 0; n < rows; ++n) {
    double mean_square = 0;
    for (int64_t j = 0; j < d; ++j) mean_square += at(x, n * d + j) * at(x, n * d + j) / double(d);
    expected_rstd.data<double>()[n] = 1.0 / std::sqrt(mean_square + 1e-6);
    for (int64_t j = 0; j < d; ++j)
      expected_out.data<double>()[n * d + j] = at(x, n * d + j) * at(expected_rstd, n) * at(weight, j);
  }
  EXPECT_TRUE(tensors_close(rstd, expected_rstd, kExact, "rstd"));
  EXPECT_TRUE(tensors_close(out, expected_out, kExact, "weighted rmsnorm out"));
}

TEST(WeightedRmsNorm, GradientsOfInputAndWeightAccumulate) {
  const int64_t d = 6;
  HostTensor x = random_tensor({2, 5, d}, rng());
  HostTensor weight = random_tensor({d}, rng(), 0.5, 1.5);
  HostTensor w = random_tensor({2, 5, d}, rng());
  HostTensor out({2, 5, d}, DType::F64), rstd({2, 5}, DType::F64);
  ops::weighted_rmsnorm_forward(out, rstd, x, weight);

  HostTensor scratch_out({2, 5, d}, DType::F64), scratch_rstd({2, 5}, DType::F64);
  auto loss = [&] {
    ops::weighted_rmsnorm_forward(scratch_out, scratch_rstd, x, weight);
    return dot(w, scratch_out);
  };
  // Both add to what is there: dx like the unweighted norm's, dweight as every parameter gradient.
  HostTensor dx_initial = random_tensor(x.shape(), rng()), dweight_initial = random_tensor(weight.shape(), rng());
  HostTensor dx = copy_of(dx_initial), dweight = copy_of(dweight_initial);
  ops::weighted_rmsnorm_backward(dx, dweight, w, x, rstd, weight);
  EXPECT_TRUE(gradient_matches(difference(dx, dx_initial), x, loss, "dx"));
  EXPECT_TRUE(gradient_matches(difference(dweight, dweight_initial), weight, loss, "dweight"));
}

// ---- RoPE ----------------------------------------------------------------------------------------

namespace {

// bf16 round-to-nearest-even written independently of core/bf16.h: keep 8 significant bits.
double bf16_reference(float value) {
  if (value == 0.0f) return 0.0;
  int exponent = 0;
  std::frexp(value, &exponent);  // value = f · 2^exponent, 0.5 <= |f| < 1
  return std::ldexp(std::nearbyint(std::ldexp(double(value), 8 - exponent)), exponent - 8);
}

struct RopeTables {
  HostTensor cos, sin;
};

RopeTables rope_tables(int64_t T, int64_t D) {
  RopeTables tables{HostTensor({T, D / 2}, DType::F64), HostTensor({T, D / 2}, DType::F64)};
  ops::rope_tables(tables.cos, tables.sin);
  return tables;
}

}  // namespace

TEST(Rope, TablesAreFp32AnglesRoundedToBf16) {
  const int64_t T = 16, D = 64, half = D / 2;
  RopeTables tables = rope_tables(T, D);
  // Worked by hand: θ = 1 (t 1, i 0): cos 0.5403023 → bf16 0.5390625, sin 0.8414710 → 0.83984375;
  // θ = 3: cos −0.9899925 → −0.98828125, sin 0.1411200 → 0.1416015625.
  EXPECT_EQ(at(tables.cos, 1 * half + 0), 0.5390625);
  EXPECT_EQ(at(tables.sin, 1 * half + 0), 0.83984375);
  EXPECT_EQ(at(tables.cos, 3 * half + 0), -0.98828125);
  EXPECT_EQ(at(tables.sin, 3 * half + 0), 0.1416015625);
  EXPECT_EQ(at(tables.cos, 0), 1.0);
  EXPECT_EQ(at(tables.sin, 0), 0.0);

  bool some_entry_is_not_a_unit_rotation = false;
  for (int64_t i = 0; i < half; ++i) {
    const float inv_freq = 1.0f / ::powf(10000.0f, float(2 * i) / float(D));
    for (int64_t t = 0; t < T; ++t) {
      const float theta = float(t) * inv_freq;
      const double c = bf16_reference(float(std::cos(double(theta))));
      const double s = bf16_reference(float(std::sin(double(theta))));
      ASSERT_EQ(at(tables.cos, t * half + i), c) << "cos at t " << t << ", i " << i;
      ASSERT_EQ(at(tables.sin, t * half + i), s) << "sin at t " << t << ", i " << i;
      if (c * c + s * s != 1.0) some_entry_is_not_a_unit_rotation = true;
    }
  }
  // Why the backward must be the transpose and not the inverse (docs/MODEL.md 1.1).
  EXPECT_TRUE(some_entry_is_not_a_unit_rotation);
}

TEST(Rope, ForwardRotatesHalvesByMinusTheta) {
  const int64_t B = 2, T = 7, R = 3, D = 8, half = D / 2;
  RopeTables tables = rope_tables(T, D);
  HostTensor x = random_tensor({B, T, R, D}, rng());
  HostTensor y = copy_of(x);
  ops::rope_forward(y, tables.cos, tables.sin);
  HostTensor expected(x.shape(), DType::F64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t row = ((b * T + t) * R + r) * D;
          const double x1 = at(x, row + i), x2 = at(x, row + half + i);
          const double c = at(tables.cos, t * half + i), s = at(tables.sin, t * half + i);
          expected.data<double>()[row + i] = x1 * c + x2 * s;
          expected.data<double>()[row + half + i] = -x1 * s + x2 * c;
        }
  EXPECT_TRUE(tensors_close(y, expected, kExact, "rope forward"));
}

TEST(Rope, BackwardIsTheTransposeOfForward) {
  const int64_t B = 2, T = 7, R = 3, D = 8;
  // Tables longer than the sequence, as a layer holding tables for the maximum length uses them.
  RopeTables tables = rope_tables(T + 4, D);
  HostTensor x = random_tensor({B, T, R, D}, rng());
  HostTensor y = random_tensor({B, T, R, D}, rng());

  // <rope(x), y> == <x, ropeᵀ(y)>: the defining identity of the transpose.
  HostTensor rotated_x = copy_of(x), transposed_y = copy_of(y);
  ops::rope_forward(rotated_x, tables.cos, tables.sin);
  ops::rope_backward(transposed_y, tables.cos, tables.sin);
  const double lhs = dot(rotated_x, y), rhs = dot(x, transposed_y);
  EXPECT_NEAR(lhs, rhs, 1e-12 * std::max(1.0, std::abs(lhs)));

  HostTensor scratch(x.shape(), DType::F64);
  auto loss = [&] {
    copy_into(scratch, x);
    ops::rope_forward(scratch, tables.cos, tables.sin);
    return dot(y, scratch);
  };
  EXPECT_TRUE(gradient_matches(transposed_y, x, loss, "rope dx"));
}

// MLA rotates only the last Dr columns of each query head: the first columns stay as they are, the
// rotated ones equal a plain rope of those columns, and the backward is still the transpose.
TEST(Rope, FirstColumnRotatesOnlyTheTailOfEachRow) {
  const int64_t B = 2, T = 5, R = 3, Dn = 5, Dr = 4;
  RopeTables tables = rope_tables(T, Dr);
  HostTensor x = random_tensor({B, T, R, Dn + Dr}, rng()), tail({B, T, R, Dr}, DType::F64);
  for (int64_t row = 0; row < B * T * R; ++row)
    for (int64_t j = 0; j < Dr; ++j) tail.data<double>()[row * Dr + j] = at(x, row * (Dn + Dr) + Dn + j);
  HostTensor y = copy_of(x);
  ops::rope_forward(y, tables.cos, tables.sin, Dn);
  ops::rope_forward(tail, tables.cos, tables.sin);
  for (int64_t row = 0; row < B * T * R; ++row) {
    for (int64_t j = 0; j < Dn; ++j) ASSERT_EQ(at(y, row * (Dn + Dr) + j), at(x, row * (Dn + Dr) + j));
    for (int64_t j = 0; j < Dr; ++j) ASSERT_EQ(at(y, row * (Dn + Dr) + Dn + j), at(tail, row * Dr + j));
  }
  HostTensor g = random_tensor(x.shape(), rng()), transposed_g = copy_of(g), scratch(x.shape(), DType::F64);
  ops::rope_backward(transposed_g, tables.cos, tables.sin, Dn);
  auto loss = [&] {
    copy_into(scratch, x);
    ops::rope_forward(scratch, tables.cos, tables.sin, Dn);
    return dot(g, scratch);
  };
  EXPECT_TRUE(gradient_matches(transposed_g, x, loss, "rope dx of the tail"));
  // The tables must cover exactly the rotated columns.
  EXPECT_THROW(ops::rope_forward(y, tables.cos, tables.sin, Dn - 1), Error);
}

// ---- TPA contraction -----------------------------------------------------------------------------

TEST(TpaContract, ForwardAndGradientsOfBothFactors) {
  const int64_t B = 2, T = 5, H = 3, D = 8;
  for (int64_t R : {2, 3}) {
    SCOPED_TRACE(::testing::Message() << "rank " << R);
    HostTensor A = random_tensor({B, T, H, R}, rng());
    HostTensor factor_B = random_tensor({B, T, R, D}, rng());
    HostTensor w = random_tensor({B, T, H, D}, rng());
    HostTensor out({B, T, H, D}, DType::F64);
    ops::tpa_contract_forward(out, A, factor_B);

    HostTensor expected({B, T, H, D}, DType::F64);
    for (int64_t n = 0; n < B * T; ++n)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < D; ++j) {
          double sum = 0;
          for (int64_t r = 0; r < R; ++r) sum += at(A, (n * H + h) * R + r) * at(factor_B, (n * R + r) * D + j);
          expected.data<double>()[(n * H + h) * D + j] = sum / double(R);
        }
    EXPECT_TRUE(tensors_close(out, expected, kExact, "tpa_contract forward"));

    HostTensor scratch({B, T, H, D}, DType::F64);
    auto loss = [&] {
      ops::tpa_contract_forward(scratch, A, factor_B);
      return dot(w, scratch);
    };
    // Both gradients are documented as overwritten: poison them first.
    HostTensor dA = filled_tensor(A.shape(), NAN), dB = filled_tensor(factor_B.shape(), NAN);
    ops::tpa_contract_backward(dA, dB, w, A, factor_B);
    EXPECT_TRUE(gradient_matches(dA, A, loss, "dA"));
    EXPECT_TRUE(gradient_matches(dB, factor_B, loss, "dB"));
  }
}

// ---- attention -----------------------------------------------------------------------------------

namespace {

// softmax(q·kᵀ/√D + causal mask)·v and the row log-sum-exps, written out directly.
void naive_attention(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, ops::HeadMap heads) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2), Dv = v.size(3);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kv = (heads.first_head + h) / heads.group_size - heads.first_kv_head;
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> weights(T, 0.0);
        double total = 0;
        for (int64_t s = 0; s <= t; ++s) {  // s > t is masked: weight exactly 0
          double score = 0;
          for (int64_t j = 0; j < D; ++j)
            score += at(q, ((b * T + t) * H + h) * D + j) * at(k, ((b * T + s) * Hkv + kv) * D + j);
          weights[s] = std::exp(score / std::sqrt(double(D)));
          total += weights[s];
        }
        for (int64_t j = 0; j < Dv; ++j) {
          double sum = 0;
          for (int64_t s = 0; s <= t; ++s) sum += weights[s] / total * at(v, ((b * T + s) * Hkv + kv) * Dv + j);
          y.data<double>()[((b * T + t) * H + h) * Dv + j] = sum;
        }
        lse.data<double>()[(b * H + h) * T + t] = std::log(total);
      }
    }
}

struct AttentionCase {
  const char* name;
  int64_t H, Hkv;
  ops::HeadMap heads;
  int64_t Dv = 8;  // value width; the query/key width is 8
};

}  // namespace

TEST(Attention, ForwardMatchesNaiveSoftmaxAndGradientsMatchFiniteDifferences) {
  const int64_t B = 2, T = 6, D = 8;
  const AttentionCase cases[] = {
      {"MHA, 3 heads", 3, 3, {}},
      {"GQA group 2, 5 heads on 3 KV heads (the last KV head serves one)", 5, 3, {0, 2, 0}},
      // A tensor-parallel rank holding query heads 2..3 of 6 (group 3) and both KV heads: head 2
      // reads KV head 0, head 3 reads KV head 1.
      {"TP rank: heads 2..3 of 6, group 3, all 2 KV heads local", 2, 2, {2, 3, 0}},
      // A rank holding heads 3..5 of 6 and only KV head 1, stored locally as KV head 0.
      {"TP rank: heads 3..5 of 6, group 3, KV head 1 local", 3, 1, {3, 3, 1}},
      // MLA: query/key heads of Dn + Dr = 8 (scale 1/sqrt(8)), value heads of 5.
      {"MLA, 3 heads, values narrower than keys", 3, 3, {}, 5},
  };
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE(c.name);
    HostTensor q = random_tensor({B, T, c.H, D}, rng());
    HostTensor k = random_tensor({B, T, c.Hkv, D}, rng());
    HostTensor v = random_tensor({B, T, c.Hkv, c.Dv}, rng());
    HostTensor w = random_tensor({B, T, c.H, c.Dv}, rng());
    HostTensor y({B, T, c.H, c.Dv}, DType::F64), lse({B, c.H, T}, DType::F64);
    // Scratch holds garbage between calls in a real run: NaN makes any read-before-write show.
    HostTensor scratch = filled_tensor({ops::attention_scratch_elements(T, true)}, NAN);
    ops::attention_forward(y, lse, q, k, v, scratch, c.heads);

    HostTensor expected_y({B, T, c.H, c.Dv}, DType::F64), expected_lse({B, c.H, T}, DType::F64);
    naive_attention(expected_y, expected_lse, q, k, v, c.heads);
    EXPECT_TRUE(tensors_close(y, expected_y, kExact, "attention y"));
    EXPECT_TRUE(tensors_close(lse, expected_lse, kExact, "attention lse"));

    HostTensor scratch_y(y.shape(), DType::F64), scratch_lse(lse.shape(), DType::F64);
    auto loss = [&] {
      ops::attention_forward(scratch_y, scratch_lse, q, k, v, scratch, c.heads);
      return dot(w, scratch_y);
    };
    HostTensor dq = filled_tensor(q.shape(), NAN), dk = filled_tensor(k.shape(), NAN), dv = filled_tensor(v.shape(), NAN);
    std::fill_n(scratch.data<double>(), scratch.numel(), NAN);
    ops::attention_backward(dq, dk, dv, w, q, k, v, y, lse, scratch, c.heads);
    EXPECT_TRUE(gradient_matches(dq, q, loss, "dq"));
    EXPECT_TRUE(gradient_matches(dk, k, loss, "dk"));
    EXPECT_TRUE(gradient_matches(dv, v, loss, "dv"));
  }
}

// ---- MLA keys and values --------------------------------------------------------------------------

// k = [k_nope, k_pe] with k_pe shared by every head, v the rest of each head's kv; the backward sums
// k_pe's gradient over the heads.
TEST(MlaSplitKv, KeysShareTheRopePartAndGradientsMatch) {
  const int64_t B = 2, T = 3, H = 3, Dn = 4, Dr = 2, Dv = 5;
  HostTensor kv = random_tensor({B, T, H, Dn + Dv}, rng()), k_pe = random_tensor({B, T, 1, Dr}, rng());
  HostTensor k({B, T, H, Dn + Dr}, DType::F64), v({B, T, H, Dv}, DType::F64);
  ops::mla_split_kv_forward(k, v, kv, k_pe);
  for (int64_t n = 0; n < B * T; ++n)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t head = n * H + h;
      for (int64_t j = 0; j < Dn; ++j) ASSERT_EQ(at(k, head * (Dn + Dr) + j), at(kv, head * (Dn + Dv) + j));
      for (int64_t j = 0; j < Dr; ++j) ASSERT_EQ(at(k, head * (Dn + Dr) + Dn + j), at(k_pe, n * Dr + j));
      for (int64_t j = 0; j < Dv; ++j) ASSERT_EQ(at(v, head * Dv + j), at(kv, head * (Dn + Dv) + Dn + j));
    }

  HostTensor wk = random_tensor(k.shape(), rng()), wv = random_tensor(v.shape(), rng());
  HostTensor scratch_k(k.shape(), DType::F64), scratch_v(v.shape(), DType::F64);
  auto loss = [&] {
    ops::mla_split_kv_forward(scratch_k, scratch_v, kv, k_pe);
    return dot(wk, scratch_k) + dot(wv, scratch_v);
  };
  HostTensor dkv = filled_tensor(kv.shape(), NAN), dk_pe = filled_tensor(k_pe.shape(), NAN);
  ops::mla_split_kv_backward(dkv, dk_pe, wk, wv);
  EXPECT_TRUE(gradient_matches(dkv, kv, loss, "dkv"));
  EXPECT_TRUE(gradient_matches(dk_pe, k_pe, loss, "dk_pe"));
  HostTensor wrong_v({B, T, H, Dv + 1}, DType::F64);
  EXPECT_THROW(ops::mla_split_kv_forward(k, wrong_v, kv, k_pe), Error);
}

// ---- TPA attention -------------------------------------------------------------------------------

TEST(TpaAttention, ForwardIsContractionThenAttentionAndAllSixFactorGradientsMatch) {
  const int64_t B = 2, T = 5, H = 3, Rq = 3, R = 2, D = 8;
  HostTensor A_q = random_tensor({B, T, H, Rq}, rng()), B_q = random_tensor({B, T, Rq, D}, rng());
  HostTensor A_k = random_tensor({B, T, H, R}, rng()), B_k = random_tensor({B, T, R, D}, rng());
  HostTensor A_v = random_tensor({B, T, H, R}, rng()), B_v = random_tensor({B, T, R, D}, rng());
  const ops::TpaFactors factors{A_q, B_q, A_k, B_k, A_v, B_v};
  HostTensor w = random_tensor({B, T, H, D}, rng());
  // The workspace holds garbage between calls in a real run: NaN makes any read-before-write show.
  const int64_t workspace_elements = ops::tpa_attention_workspace_elements(B, T, H, D);
  HostTensor workspace = filled_tensor({workspace_elements}, NAN);

  HostTensor y({B, T, H, D}, DType::F64), lse({B, H, T}, DType::F64);
  ops::tpa_attention_forward(y, lse, factors, workspace);

  HostTensor q({B, T, H, D}, DType::F64), k({B, T, H, D}, DType::F64), v({B, T, H, D}, DType::F64);
  ops::tpa_contract_forward(q, A_q, B_q);  // checked against its own reference above
  ops::tpa_contract_forward(k, A_k, B_k);
  ops::tpa_contract_forward(v, A_v, B_v);
  HostTensor expected_y(y.shape(), DType::F64), expected_lse(lse.shape(), DType::F64);
  naive_attention(expected_y, expected_lse, q, k, v, {});
  EXPECT_TRUE(tensors_close(y, expected_y, kExact, "tpa_attention y"));
  EXPECT_TRUE(tensors_close(lse, expected_lse, kExact, "tpa_attention lse"));

  HostTensor scratch_y(y.shape(), DType::F64), scratch_lse(lse.shape(), DType::F64);
  HostTensor scratch_workspace({workspace_elements}, DType::F64);
  auto loss = [&] {
    ops::tpa_attention_forward(scratch_y, scratch_lse, factors, scratch_workspace);
    return dot(w, scratch_y);
  };
  HostTensor dA_q = filled_tensor(A_q.shape(), NAN), dB_q = filled_tensor(B_q.shape(), NAN);
  HostTensor dA_k = filled_tensor(A_k.shape(), NAN), dB_k = filled_tensor(B_k.shape(), NAN);
  HostTensor dA_v = filled_tensor(A_v.shape(), NAN), dB_v = filled_tensor(B_v.shape(), NAN);
  std::fill_n(workspace.data<double>(), workspace_elements, NAN);
  ops::tpa_attention_backward({dA_q, dB_q, dA_k, dB_k, dA_v, dB_v}, w, y, lse, factors, workspace);
  EXPECT_TRUE(gradient_matches(dA_q, A_q, loss, "dA_q"));
  EXPECT_TRUE(gradient_matches(dB_q, B_q, loss, "dB_q"));
  EXPECT_TRUE(gradient_matches(dA_k, A_k, loss, "dA_k"));
  EXPECT_TRUE(gradient_matches(dB_k, B_k, loss, "dB_k"));
  EXPECT_TRUE(gradient_matches(dA_v, A_v, loss, "dA_v"));
  EXPECT_TRUE(gradient_matches(dB_v, B_v, loss, "dB_v"));
}

// RoPE inside the op (the CPU runs the materialised path): the forward is tpa_attention over the
// rotated B_q, B_k, and the six gradients are those of the unrotated factors (RoPEᵀ included).
TEST(TpaAttention, RotaryForwardRotatesBqAndBkAndItsGradientsAreTheUnrotatedFactors) {
  const int64_t B = 2, T = 5, H = 3, Rq = 2, R = 1, D = 8;
  HostTensor A_q = random_tensor({B, T, H, Rq}, rng()), B_q = random_tensor({B, T, Rq, D}, rng());
  HostTensor A_k = random_tensor({B, T, H, R}, rng()), B_k = random_tensor({B, T, R, D}, rng());
  HostTensor A_v = random_tensor({B, T, H, R}, rng()), B_v = random_tensor({B, T, R, D}, rng());
  const ops::TpaFactors factors{A_q, B_q, A_k, B_k, A_v, B_v};
  const RopeTables tables = rope_tables(T, D);
  HostTensor w = random_tensor({B, T, H, D}, rng());
  const int64_t workspace_elements = ops::tpa_rotary_attention_workspace_elements(B, T, H, Rq, R, D);
  HostTensor workspace = filled_tensor({workspace_elements}, NAN);

  HostTensor y({B, T, H, D}, DType::F64), lse({B, H, T}, DType::F64);
  ops::tpa_rotary_attention_forward(y, lse, factors, tables.cos, tables.sin, workspace);
  HostTensor rotated_B_q = copy_of(B_q), rotated_B_k = copy_of(B_k);
  ops::rope_forward(rotated_B_q, tables.cos, tables.sin);  // checked against its own reference above
  ops::rope_forward(rotated_B_k, tables.cos, tables.sin);
  HostTensor expected_y(y.shape(), DType::F64), expected_lse(lse.shape(), DType::F64);
  HostTensor plain_workspace({ops::tpa_attention_workspace_elements(B, T, H, D)}, DType::F64);
  ops::tpa_attention_forward(expected_y, expected_lse, {A_q, rotated_B_q, A_k, rotated_B_k, A_v, B_v}, plain_workspace);
  EXPECT_TRUE(tensors_close(y, expected_y, kExact, "rotary tpa_attention y"));
  EXPECT_TRUE(tensors_close(lse, expected_lse, kExact, "rotary tpa_attention lse"));

  HostTensor scratch_y(y.shape(), DType::F64), scratch_lse(lse.shape(), DType::F64);
  HostTensor scratch_workspace({workspace_elements}, DType::F64);
  auto loss = [&] {
    ops::tpa_rotary_attention_forward(scratch_y, scratch_lse, factors, tables.cos, tables.sin, scratch_workspace);
    return dot(w, scratch_y);
  };
  HostTensor dA_q = filled_tensor(A_q.shape(), NAN), dB_q = filled_tensor(B_q.shape(), NAN);
  HostTensor dA_k = filled_tensor(A_k.shape(), NAN), dB_k = filled_tensor(B_k.shape(), NAN);
  HostTensor dA_v = filled_tensor(A_v.shape(), NAN), dB_v = filled_tensor(B_v.shape(), NAN);
  std::fill_n(workspace.data<double>(), workspace_elements, NAN);
  ops::tpa_rotary_attention_backward({dA_q, dB_q, dA_k, dB_k, dA_v, dB_v}, w, y, lse, factors, tables.cos, tables.sin,
                                     workspace);
  EXPECT_TRUE(gradient_matches(dA_q, A_q, loss, "dA_q"));
  EXPECT_TRUE(gradient_matches(dB_q, B_q, loss, "dB_q"));
  EXPECT_TRUE(gradient_matches(dA_k, A_k, loss, "dA_k"));
  EXPECT_TRUE(gradient_matches(dB_k, B_k, loss, "dB_k"));
  EXPECT_TRUE(gradient_matches(dA_v, A_v, loss, "dA_v"));
  EXPECT_TRUE(gradient_matches(dB_v, B_v, loss, "dB_v"));
}

// ---- SwiGLU --------------------------------------------------------------------------------------

TEST(SwiGlu, ForwardIsSiluTimesGateAndGradientsMatch) {
  const Shape shape{2, 5, 7};
  HostTensor a = random_tensor(shape, rng(), -4.0, 4.0), b = random_tensor(shape, rng(), -2.0, 2.0);
  HostTensor w = random_tensor(shape, rng());
  HostTensor out(shape, DType::F64);
  ops::swiglu_forward(out, a, b);
  HostTensor expected(shape, DType::F64);
  for (int64_t i = 0; i < a.numel(); ++i)
    expected.data<double>()[i] = at(a, i) / (1.0 + std::exp(-at(a, i))) * at(b, i);
  EXPECT_TRUE(tensors_close(out, expected, kExact, "swiglu forward"));

  HostTensor scratch(shape, DType::F64);
  auto loss = [&] {
    ops::swiglu_forward(scratch, a, b);
    return dot(w, scratch);
  };
  HostTensor da = filled_tensor(shape, NAN), db = filled_tensor(shape, NAN);
  ops::swiglu_backward(da, db, w, a, b);
  EXPECT_TRUE(gradient_matches(da, a, loss, "da (through silu)"));
  EXPECT_TRUE(gradient_matches(db, b, loss, "db (the gate)"));
}

// ---- cross-entropy -------------------------------------------------------------------------------

// The cross-entropy passes of ops.h on one rank (the whole vocabulary): losses; with a dloss the
// gradient replaces the logits.
void cross_entropy(const Tensor& losses, const Tensor& logits_in_out, const Tensor& targets,
                   std::optional<float> dloss = std::nullopt) {
  const int64_t N = losses.numel();
  HostTensor row_max({N}, DType::F64), sum_exp({N}, DType::F64), target_logit({N}, DType::F64);
  ops::cross_entropy_exp_sum(row_max, sum_exp, target_logit, logits_in_out, targets);
  ops::cross_entropy_losses(losses, row_max, sum_exp, target_logit);
  if (dloss) ops::cross_entropy_gradient(logits_in_out, targets, row_max, row_max, sum_exp, *dloss);
}

// Losses only, leaving `logits` as they are (the phases work in place).
void cross_entropy_losses_of(const Tensor& losses, const Tensor& logits, const Tensor& targets) {
  HostTensor scratch = copy_of(logits);
  cross_entropy(losses, scratch, targets);
}

TEST(CrossEntropy, LossIsLogSumExpMinusTargetLogit) {
  const int64_t N = 10, V = 11;
  HostTensor logits = random_tensor({2, N / 2, V}, rng(), -3.0, 3.0);
  // Row 4 is shifted by +1000: exp would overflow without subtracting the row maximum.
  for (int64_t j = 0; j < V; ++j) logits.data<double>()[4 * V + j] += 1000.0;
  HostTensor targets = token_ids({0, 10, 3, 3, 7, 1, 10, 5, 2, 0});  // both ends of the vocabulary

  HostTensor expected_losses({N}, DType::F64);
  for (int64_t n = 0; n < N; ++n) {
    double max_logit = -INFINITY, sum = 0;
    for (int64_t j = 0; j < V; ++j) max_logit = std::max(max_logit, at(logits, n * V + j));
    for (int64_t j = 0; j < V; ++j) sum += std::exp(at(logits, n * V + j) - max_logit);
    expected_losses.data<double>()[n] = max_logit + std::log(sum) - at(logits, n * V + targets.data<int32_t>()[n]);
  }
  HostTensor losses = filled_tensor({N}, NAN);
  cross_entropy_losses_of(losses, logits, targets);
  EXPECT_TRUE(tensors_close(losses, expected_losses, kExact, "cross-entropy losses"));

  HostTensor fused_losses = filled_tensor({N}, NAN);
  HostTensor dlogits = copy_of(logits);
  cross_entropy(fused_losses, dlogits, targets, 1.0f);
  EXPECT_TRUE(tensors_close(fused_losses, expected_losses, kExact, "cross-entropy losses with the gradient"));
  // With dloss 1 each gradient row is softmax − onehot: it sums to zero, also in the shifted row.
  for (int64_t n = 0; n < N; ++n) {
    double row_sum = 0;
    for (int64_t j = 0; j < V; ++j) row_sum += at(dlogits, n * V + j);
    EXPECT_NEAR(row_sum, 0.0, 1e-12) << "row " << n;
  }
}

// The gradient phase overwrites the logits with the gradient of dloss · Σ losses (dloss is the
// mean's 1/N times the micro-batch weight in training).
TEST(CrossEntropy, FusedGradientIsDlossTimesGradientOfSummedLosses) {
  const int64_t N = 10, V = 11;
  HostTensor logits = random_tensor({N, V}, rng(), -3.0, 3.0);
  HostTensor targets = token_ids({4, 10, 0, 3, 7, 1, 10, 5, 2, 4});
  const float dloss = 0.37f;

  HostTensor losses({N}, DType::F64), dlogits = copy_of(logits);
  cross_entropy(losses, dlogits, targets, dloss);

  HostTensor scratch_losses({N}, DType::F64);
  HostTensor ones = filled_tensor({N}, 1.0);
  auto loss = [&] {
    cross_entropy_losses_of(scratch_losses, logits, targets);
    return double(dloss) * dot(ones, scratch_losses);
  };
  EXPECT_TRUE(gradient_matches(dlogits, logits, loss, "dlogits"));
}

// Vocab-parallel: three "ranks" hold columns [0, 4), [4, 8), [8, 11), each with its own row maxima.
// Reducing as the model does (MAX of the local maxima; sums rescaled to it, then SUM of sums and
// target logits) gives the unsplit losses, and each rank's gradient is its columns of the unsplit one.
TEST(CrossEntropy, VocabSplitOverRanksMatchesTheWholeVocabulary) {
  const int64_t N = 6, V = 11;
  const std::vector<int64_t> bounds = {0, 4, 8, 11};
  const size_t ranks = bounds.size() - 1;
  HostTensor logits = random_tensor({N, V}, rng(), -3.0, 3.0);
  for (int64_t j = 0; j < 4; ++j) logits.data<double>()[2 * V + j] += 50.0;  // row 2's maximum is on rank 0 only
  HostTensor targets = token_ids({0, 3, 4, 7, 8, 10});  // each slice's first and last column
  const float dloss = 0.25f;
  HostTensor expected_losses({N}, DType::F64), expected_gradient = copy_of(logits);
  cross_entropy(expected_losses, expected_gradient, targets, dloss);

  std::vector<HostTensor> parts, local_max, sum_exp, target_logit;
  HostTensor row_max = filled_tensor({N}, -INFINITY);
  for (size_t rank = 0; rank < ranks; ++rank) {
    const int64_t width = bounds[rank + 1] - bounds[rank];
    parts.emplace_back(Shape{N, width}, DType::F64);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < width; ++j) parts[rank].data<double>()[n * width + j] = at(logits, n * V + bounds[rank] + j);
    local_max.emplace_back(Shape{N}, DType::F64);
    sum_exp.emplace_back(Shape{N}, DType::F64);
    target_logit.emplace_back(Shape{N}, DType::F64);
    ops::cross_entropy_exp_sum(local_max[rank], sum_exp[rank], target_logit[rank], parts[rank], targets, {bounds[rank], V});
    for (int64_t n = 0; n < N; ++n) row_max.data<double>()[n] = std::max(at(row_max, n), at(local_max[rank], n));  // MAX
  }
  HostTensor total_exp = filled_tensor({N}, 0.0), total_target = filled_tensor({N}, 0.0);
  for (size_t rank = 0; rank < ranks; ++rank) {
    ops::cross_entropy_rescale(sum_exp[rank], local_max[rank], row_max);
    for (int64_t n = 0; n < N; ++n) {  // SUM
      total_exp.data<double>()[n] += at(sum_exp[rank], n);
      total_target.data<double>()[n] += at(target_logit[rank], n);
    }
  }
  HostTensor losses({N}, DType::F64);
  ops::cross_entropy_losses(losses, row_max, total_exp, total_target);
  EXPECT_TRUE(tensors_close(losses, expected_losses, 1e-13, "losses from three vocabulary slices"));
  for (size_t rank = 0; rank < ranks; ++rank) {
    const int64_t width = bounds[rank + 1] - bounds[rank];
    ops::cross_entropy_gradient(parts[rank], targets, local_max[rank], row_max, total_exp, dloss, {bounds[rank], V});
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < width; ++j)
        EXPECT_NEAR(at(parts[rank], n * width + j), at(expected_gradient, n * V + bounds[rank] + j), 1e-15)
            << "rank " << rank << " row " << n << " column " << j;
  }
}

// ---- AdamW ---------------------------------------------------------------------------------------

// torch.optim.AdamW, written out: p ← p·(1 − lr·wd) first (decoupled decay of the pre-update value),
// then m, v from g = grad·grad_scale, then p ← p − lr·m̂/(√v̂ + eps) with bias-corrected m̂, v̂.
// Decaying after the Adam step instead would differ by lr²·wd·|step| ≈ 1e-5 here, far above 1e-12.
TEST(AdamW, SeveralStepsMatchTorchAdamW) {
  const Shape shape{3, 4};
  ops::AdamWStep hyper;
  hyper.lr = 0.01f;
  hyper.weight_decay = 0.1f;
  hyper.grad_scale = 0.5f;
  HostTensor param = random_tensor(shape, rng()), m({3, 4}, DType::F64), v({3, 4}, DType::F64);
  HostTensor expected_param = copy_of(param), expected_m({3, 4}, DType::F64), expected_v({3, 4}, DType::F64);
  // The hyperparameters are floats: the reference uses exactly the values the op receives.
  const double lr = hyper.lr, wd = hyper.weight_decay, beta1 = hyper.beta1, beta2 = hyper.beta2, eps = hyper.eps,
               grad_scale = hyper.grad_scale;

  for (int64_t step = 1; step <= 4; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    HostTensor grad = random_tensor(shape, rng());
    grad.data<double>()[0] = step == 1 ? 0.0 : grad.data<double>()[0];  // zero moments: only decay moves it
    grad.data<double>()[1] *= 1e-7;                                   // eps matters against √v̂
    hyper.step = step;
    ops::adamw_update(param, grad, m, v, hyper);

    for (int64_t i = 0; i < param.numel(); ++i) {
      double &p = expected_param.data<double>()[i], &m1 = expected_m.data<double>()[i], &m2 = expected_v.data<double>()[i];
      const double g = at(grad, i) * grad_scale;
      p *= 1.0 - lr * wd;
      m1 = beta1 * m1 + (1.0 - beta1) * g;
      m2 = beta2 * m2 + (1.0 - beta2) * g * g;
      const double m_hat = m1 / (1.0 - std::pow(beta1, double(step)));
      const double v_hat = m2 / (1.0 - std::pow(beta2, double(step)));
      p -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    EXPECT_TRUE(tensors_close(param, expected_param, kExact, "param"));
    EXPECT_TRUE(tensors_close(m, expected_m, kExact, "exp_avg"));
    EXPECT_TRUE(tensors_close(v, expected_v, kExact, "exp_avg_sq"));
  }
}

// ---- error paths ---------------------------------------------------------------------------------

// ---- cast and list statistics ------------------------------------------------------------------

TEST(Cast, Fp32ToBf16RoundsToNearestEvenAndFp64ToFp32Rounds) {
  float values[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -2.5f};
  uint16_t bits[4] = {};
  ops::cast(Tensor(bits, {4}, DType::BF16), Tensor(values, {4}, DType::F32));
  EXPECT_EQ(bits[0], 0x3f80) << "a tie rounds to the even 1.0";
  EXPECT_EQ(bits[1], 0x3f82) << "a tie rounds to the even 1 + 2^-6";
  EXPECT_EQ(bits[2], 0x3f81) << "past the tie rounds up";
  EXPECT_EQ(bits[3], 0xc020);
  double wide[2] = {1.0 + 0x1p-30, -3.0};
  float narrow[2] = {};
  ops::cast(Tensor(narrow, {2}, DType::F32), Tensor(wide, {2}, DType::F64));
  EXPECT_EQ(narrow[0], 1.0f);
  EXPECT_EQ(narrow[1], -3.0f);
}

// ---- column blocks (TPA's factor maps as one GEMM) ------------------------------------------

// packed (3, 7) holds parts of widths 2, 1 and 4 side by side: each part's element (r, c) is packed's
// (r, first column of the part + c), a part of more dims counting as (3, numel / 3); pack_columns
// puts every element back where split_columns took it.
TEST(ColumnBlocks, SplitTakesEachPartsColumnsAndPackPutsThemBack) {
  const int64_t rows = 3, widths[] = {2, 1, 4}, first_columns[] = {0, 2, 3};
  HostTensor packed = random_tensor({rows, 7}, rng());
  std::vector<HostTensor> parts;
  parts.emplace_back(Shape{rows, 2}, DType::F64);
  parts.emplace_back(Shape{rows, 1}, DType::F64);
  parts.emplace_back(Shape{rows, 2, 2}, DType::F64);  // (B, T, R, D)-like factors are seen as rows too
  for (HostTensor& part : parts) std::fill_n(part.data<double>(), part.numel(), NAN);
  const std::vector<Tensor> views = {parts[0], parts[1], parts[2]};
  ops::split_columns(views, packed);
  for (int i = 0; i < 3; ++i)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < widths[i]; ++c)
        ASSERT_EQ(at(parts[i], r * widths[i] + c), at(packed, r * 7 + first_columns[i] + c))
            << "part " << i << " row " << r << " column " << c;

  HostTensor repacked = filled_tensor(packed.shape(), NAN);
  ops::pack_columns(repacked, views);
  EXPECT_TRUE(tensors_close(repacked, packed, 0, "pack_columns of split_columns"));

  // Widths that do not add up to packed's, and a part whose size is not whole rows, are refused.
  EXPECT_THROW(ops::split_columns({parts[0], parts[1]}, packed), Error);
  HostTensor ragged({7}, DType::F64);
  EXPECT_THROW(ops::pack_columns(packed, {parts[0], ragged, parts[2]}), Error);
}

TEST(TensorListStatistics, SumsSquaresOfEveryTensorAndCountsNonFinite) {
  float a[3] = {1, 2, 3};
  double b[2] = {0.5, -4};
  const std::vector<Tensor> finite = {Tensor(a, {3}, DType::F32), Tensor(b, {2}, DType::F64)};
  double statistics[2] = {-1, -1};
  ops::tensor_list_statistics(Tensor(statistics, {2}, DType::F64), finite);
  EXPECT_EQ(statistics[0], 1 + 4 + 9 + 0.25 + 16);
  EXPECT_EQ(statistics[1], 0);
  EXPECT_EQ(ops::sum_of_squares(finite), statistics[0]);
  float c[3] = {std::numeric_limits<float>::infinity(), 1, -std::numeric_limits<float>::infinity()};
  double d[1] = {std::numeric_limits<double>::quiet_NaN()};
  ops::tensor_list_statistics(Tensor(statistics, {2}, DType::F64),
                              {Tensor(a, {3}, DType::F32), Tensor(c, {3}, DType::F32), Tensor(d, {1}, DType::F64)});
  EXPECT_TRUE(std::isnan(statistics[0]));
  EXPECT_EQ(statistics[1], 3);
  ops::tensor_list_statistics(Tensor(statistics, {2}, DType::F64), {});
  EXPECT_EQ(statistics[0], 0);
  EXPECT_EQ(statistics[1], 0);
  EXPECT_EQ(ops::sum_of_squares({}), 0);
}

// The CPU gradient norm's bits: each tensor's sum of squares (as for that tensor alone) added to the
// total in list order, whatever the thread count. OpenMP adds its threads' partials to a reduction
// variable in the order they finish, so a variable already holding the earlier tensors' sum would
// round differently from run to run.
TEST(TensorListStatistics, AddsEachTensorsSumInListOrderWithSeveralThreads) {
  use_cpu_threads(2, "test threads");
  std::vector<HostTensor> owned;
  std::vector<Tensor> tensors;
  for (int64_t numel : {100003, 7, 65537, 1, 4096}) {
    owned.push_back(random_tensor({numel}, rng()));
    tensors.push_back(owned.back().view());
  }
  double expected = 0, statistics[2] = {0, 0};
  for (const Tensor& x : tensors) {
    ops::tensor_list_statistics(Tensor(statistics, {2}, DType::F64), {x});
    expected += statistics[0];
  }
  for (int run = 0; run < 20; ++run) {
    ops::tensor_list_statistics(Tensor(statistics, {2}, DType::F64), tensors);
    ASSERT_EQ(statistics[0], expected) << "run " << run;
  }
  use_cpu_threads(available_cores(), "test threads");  // OpenMP's default
}

TEST(OpErrors, MismatchedShapesThrow) {
  HostTensor a = random_tensor({3, 5}, rng()), b = random_tensor({4, 4}, rng()), out({3, 4}, DType::F64);
  EXPECT_THROW(ops::matmul(out, a, b, false, false), Error);  // inner dims 5 and 4

  HostTensor x = random_tensor({4, 6}, rng()), wrong({4, 5}, DType::F64), rstd({4}, DType::F64), short_rstd({3}, DType::F64);
  EXPECT_THROW(ops::rmsnorm_forward(wrong, rstd, x), Error);
  EXPECT_THROW(ops::rmsnorm_forward(HostTensor({4, 6}, DType::F64), short_rstd, x), Error);
  EXPECT_THROW(ops::rmsnorm_backward(wrong, x, x, rstd), Error);
  HostTensor weight = random_tensor({6}, rng()), short_weight = random_tensor({5}, rng());
  EXPECT_THROW(ops::weighted_rmsnorm_forward(HostTensor({4, 6}, DType::F64), rstd, x, short_weight), Error);
  EXPECT_THROW(ops::weighted_rmsnorm_backward(wrong, weight, x, x, rstd, weight), Error);

  EXPECT_THROW(ops::swiglu_forward(wrong, x, x), Error);
  EXPECT_THROW(ops::swiglu_backward(wrong, x, x, x, x), Error);

  HostTensor q = random_tensor({2, 5, 3, 8}, rng()), k_short_d = random_tensor({2, 5, 3, 6}, rng());
  HostTensor y({2, 5, 3, 8}, DType::F64), lse({2, 3, 5}, DType::F64);
  HostTensor scratch({ops::attention_scratch_elements(5, true)}, DType::F64);
  EXPECT_THROW(ops::attention_forward(y, lse, q, k_short_d, k_short_d, scratch), Error);
  // Group 2 over 3 query heads needs 2 KV heads: with 1, head 2 maps past the end.
  HostTensor k_one_head = random_tensor({2, 5, 1, 8}, rng());
  EXPECT_THROW(ops::attention_forward(y, lse, q, k_one_head, k_one_head, scratch, {0, 2, 0}), Error);
  // Scratch for one T×T matrix less an element, or of another element type, is refused.
  HostTensor k = random_tensor({2, 5, 3, 8}, rng());
  HostTensor short_scratch({ops::attention_scratch_elements(5, false) - 1}, DType::F64);
  const std::string message = t6::testing::error_of([&] { ops::attention_forward(y, lse, q, k, k, short_scratch); });
  EXPECT_NE(message.find("scratch of 24 elements, 25 needed"), std::string::npos) << message;
  EXPECT_THROW(ops::attention_forward(y, lse, q, k, k, HostTensor({25}, DType::F32)), Error);
  HostTensor dq(q.shape(), DType::F64), dk(k.shape(), DType::F64);
  HostTensor one_matrix({ops::attention_scratch_elements(5, false)}, DType::F64);
  ops::attention_forward(y, lse, q, k, k, one_matrix);
  EXPECT_THROW(ops::attention_backward(dq, dk, dk, y, q, k, k, y, lse, one_matrix), Error);

  HostTensor A = random_tensor({2, 5, 3, 2}, rng()), B_rank3 = random_tensor({2, 5, 3, 8}, rng());
  EXPECT_THROW(ops::tpa_contract_forward(y, A, B_rank3), Error);
  HostTensor small_workspace({ops::tpa_attention_workspace_elements(2, 5, 3, 8) / 6}, DType::F64);
  HostTensor B2 = random_tensor({2, 5, 2, 8}, rng());
  EXPECT_THROW(ops::tpa_attention_forward(y, lse, {A, B2, A, B2, A, B2}, small_workspace), Error);

  // RoPE tables must cover the sequence (5 > 4 positions).
  RopeTables tables = rope_tables(4, 8);
  EXPECT_THROW(ops::rope_forward(q, tables.cos, tables.sin), Error);

  HostTensor m({3, 5}, DType::F64);
  EXPECT_THROW(ops::adamw_update(a, b, m, m, {}), Error);

  // F32 and F64 in one call.
  HostTensor x32({4, 6}, DType::F32);
  EXPECT_THROW(ops::swiglu_forward(x32, x, x), Error);
}

TEST(OpErrors, OutOfVocabularyIdsThrow) {
  HostTensor table = random_tensor({7, 3}, rng()), out({2, 3}, DType::F64), dtable({7, 3}, DType::F64);
  for (int32_t bad : {7, -1, 1 << 30}) {
    SCOPED_TRACE(::testing::Message() << "token id " << bad);
    HostTensor tokens = token_ids({1, bad});
    EXPECT_THROW(ops::embedding_forward(out, tokens, table), Error);
    EXPECT_THROW(ops::embedding_backward(dtable, out, tokens), Error);
    HostTensor logits = random_tensor({2, 7}, rng()), maxima = filled_tensor({2}, 0.0), sums = filled_tensor({2}, 1.0),
               target_logits({2}, DType::F64);
    EXPECT_THROW(ops::cross_entropy_exp_sum(maxima, sums, target_logits, logits, tokens), Error);
    EXPECT_THROW(ops::cross_entropy_gradient(logits, tokens, maxima, maxima, sums, 1.0f), Error);
  }
  // A rejected backward must not have touched dtable (the check comes before any write).
  for (int64_t i = 0; i < dtable.numel(); ++i) EXPECT_EQ(at(dtable, i), 0.0);

  HostTensor logits = random_tensor({2, 7}, rng()), three({3}, DType::F64), two({2}, DType::F64);
  EXPECT_THROW(ops::cross_entropy_exp_sum(three, two, two, logits, token_ids({1, 2})), Error);
  EXPECT_THROW(ops::cross_entropy_losses(three, two, two, two), Error);
  EXPECT_THROW(ops::cross_entropy_rescale(three, two, two), Error);
  // A slice that does not fit the vocabulary.
  EXPECT_THROW(ops::embedding_forward(out, token_ids({1, 2}), table, {5, 10}), Error);
}
