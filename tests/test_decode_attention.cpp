// ctest-labels: infer
// ctest-timeout: 120
// The decode attention ops (kernels/ops.h) against attention computed in double from the same cache
// numbers (for a BF16 cache, the rounded ones): MHA, GQA and MLA-style shared key/value rows, T6
// and KVonly queries in both TPA orders, several rows of different slots and lengths in one call.
// The lengths (1 to 1537) do not divide the block sizes (5, 64, 256) nor the thread counts (1, 2, 3),
// and past 512 positions a row is cut into pieces whose softmax states merge by log-sum-exp; every
// team size gives the same bits.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "common/decode_test_inputs.h"
#include "core/bf16.h"
#include "kernels/ops.h"

namespace t6 {
namespace {

using testing::DecodeCallRows;
using testing::uniform_values;

constexpr int64_t kLengths[] = {1, 7, 511, 513, 1100, 1537};
constexpr int64_t kBlocks[] = {5, 64, 256};
constexpr int kThreads[] = {1, 2, 3};

// A cache tensor (slots, T, rows, cols) in F32 or BF16 with uniform numbers in [−1, 1), and the
// values it holds (after rounding) for the reference.
struct CacheTensor {
  std::vector<float> values;
  std::vector<uint16_t> bits;
  Tensor tensor;
  CacheTensor(Shape shape, DType dtype, uint32_t seed) : values(size_t(shape.numel())) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float& value : values) value = uniform(generator);
    if (dtype == DType::BF16) {
      for (float& value : values) bits.push_back(float_to_bf16_bits(value)), value = bf16_bits_to_float(bits.back());
      tensor = Tensor(bits.data(), shape, DType::BF16);
    } else {
      tensor = Tensor(values.data(), shape, DType::F32);
    }
  }
  float at(int64_t slot, int64_t position, int64_t row, int64_t col) const {
    const Shape& s = tensor.shape();
    return values[size_t(((slot * s[1] + position) * s[2] + row) * s[3] + col)];
  }
};

// softmax(scale · scores) · values over `length` positions, in double.
void reference_softmax(double* y, const std::vector<double>& scores, const std::vector<std::vector<double>>& values) {
  double largest = -INFINITY, sum = 0;
  for (double s : scores) largest = std::max(largest, s);
  const size_t width = values[0].size();
  std::fill(y, y + width, 0.0);
  for (size_t t = 0; t < scores.size(); ++t) {
    const double p = std::exp(scores[t] - largest);
    sum += p;
    for (size_t j = 0; j < width; ++j) y[j] += p * values[t][j];
  }
  for (size_t j = 0; j < width; ++j) y[j] /= sum;
}

// The workspace of a call, for `threads` threads.
struct Workspace {
  std::vector<float> per_thread, partials;
  ops::DecodeWorkspace view;
  Workspace(int64_t threads, int64_t thread_elements, int64_t partial_elements)
      : per_thread(size_t(threads * thread_elements)), partials(size_t(ops::kDecodePartialStates * partial_elements)) {
    view = {Tensor(per_thread.data(), {threads, thread_elements}, DType::F32),
            Tensor(partials.data(), {ops::kDecodePartialStates, partial_elements}, DType::F32)};
  }
};

// |y − expected| within 2e-5 (outputs are averages of numbers in [−1, 1)); fp32 sums over up to 1537
// positions stay near 1e-6.
void expect_close(const std::vector<float>& y, const std::vector<double>& expected, const std::string& what) {
  ASSERT_EQ(y.size(), expected.size());
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(double(y[i]), expected[i], 2e-5) << what << ", element " << i;
}

struct KvShape {
  const char* name;
  int64_t heads, kv_heads, key_width, value_width;
};

TEST(DecodeAttention, KvCacheMatchesAttentionInDoubleAcrossPiecesBlocksAndThreads) {
  const KvShape shapes[] = {{"MHA", 3, 3, 24, 24}, {"GQA", 6, 2, 20, 12}, {"MLA", 5, 1, 28, 28}};
  for (const KvShape& shape : shapes)
    for (DType dtype : {DType::F32, DType::BF16})
      for (bool single : {true, false}) {
        const int64_t H = shape.heads, Hkv = shape.kv_heads, Dk = shape.key_width, Dv = shape.value_width;
        const int64_t T = 1537;
        const CacheTensor k({3, T, Hkv, Dk}, dtype, 1);
        const CacheTensor v_own({3, T, Hkv, Dv}, dtype, 2);
        for (bool shared : {false, true}) {  // shared: v is k, as MLA's latent row is its own value
          if (shared && Dk != Dv) continue;
          const CacheTensor& v = shared ? k : v_own;
          for (int64_t length : kLengths) {
            const DecodeCallRows rows(length, kBlocks[0], single);
            const int64_t N = rows.size();
            const std::vector<float> q = uniform_values(N * H * Dk, 3);
            std::vector<double> expected(size_t(N * H * Dv));
            for (int64_t n = 0; n < N; ++n)
              for (int64_t h = 0; h < H; ++h) {
                std::vector<double> scores;
                std::vector<std::vector<double>> values;
                const int64_t kv = h / (H / Hkv);
                for (int64_t t = 0; t < rows.length[size_t(n)]; ++t) {
                  double s = 0;
                  for (int64_t j = 0; j < Dk; ++j) s += double(q[size_t((n * H + h) * Dk + j)]) * k.at(rows.slot[size_t(n)], t, kv, j);
                  scores.push_back(s / std::sqrt(double(Dk)));
                  values.emplace_back();
                  for (int64_t j = 0; j < Dv; ++j) values.back().push_back(v.at(rows.slot[size_t(n)], t, kv, j));
                }
                reference_softmax(expected.data() + (n * H + h) * Dv, scores, values);
              }
            std::vector<float> first;
            for (int64_t block : kBlocks)
              for (int threads : kThreads) {
                DecodeCallRows blocked = rows;
                blocked.view.block_tokens = block;
                Workspace workspace(threads, ops::kv_decode_thread_elements(H, Hkv, Dk, Dv, block, dtype),
                                    ops::decode_partial_elements(H, Dv));
                std::vector<float> y(size_t(N * H * Dv));
                ops::kv_decode_attention(Tensor(y.data(), {N, H, Dv}, DType::F32),
                                         Tensor(const_cast<float*>(q.data()), {N, H, Dk}, DType::F32), k.tensor,
                                         v.tensor, blocked.view, workspace.view);
                const std::string what = str(shape.name, shared ? " (v is k)" : "", " ", dtype_name(dtype), ", ", N,
                                             " rows, length ", length, ", block ", block, ", ", threads, " threads");
                expect_close(y, expected, what);
                if (block == kBlocks[0] && threads == 1) first = y;
                if (block == kBlocks[0]) {
                  EXPECT_EQ(std::memcmp(first.data(), y.data(), y.size() * sizeof(float)), 0) << what << ": not bit-identical to 1 thread";
                }
              }
          }
        }
      }
}

// Two shapes: 5 heads (fewer than a lane of 8) with Rq 3 and R 1; and 11 heads (a whole lane of the
// vectorised passes and a remainder) with Rq 9 (more than a lane), R 2 and D 44 (the value side's
// widest tile of 32 columns, then 8, then 4 single ones).
struct FactorShape {
  int64_t H, D, R, Rq;
};
constexpr FactorShape kFactorShapes[] = {{5, 24, 1, 3}, {11, 44, 2, 9}};

TEST(DecodeAttention, FactorCacheMatchesAttentionInDoubleForBothQueriesAndOrders) {
  const int64_t T = 1537;
  for (const auto [H, D, R, Rq] : kFactorShapes)
    for (DType dtype : {DType::F32, DType::BF16}) {
      const CacheTensor A_k({3, T, R, H}, dtype, 4), B_k({3, T, R, D}, dtype, 5), A_v({3, T, R, H}, dtype, 6),
          B_v({3, T, R, D}, dtype, 7);
      const ops::TpaFactorCache cache{A_k.tensor, B_k.tensor, A_v.tensor, B_v.tensor};
      for (bool factorised_query : {true, false})
        for (int64_t length : kLengths) {
          const DecodeCallRows rows(length, kBlocks[0], false);
          const int64_t N = rows.size();
          const std::vector<float> A_q = uniform_values(N * H * Rq, 8), B_q = uniform_values(N * Rq * D, 9),
                                   q = uniform_values(N * H * D, 10);
          // q_h = (1/Rq) Σ_r A_q[h][r] B_q[r], k_h = (1/R) Σ_r A_k[r][h] B_k[r] (likewise v), scale 1/sqrt(D).
          std::vector<double> expected(size_t(N * H * D));
          for (int64_t n = 0; n < N; ++n) {
            const int64_t slot = rows.slot[size_t(n)];
            for (int64_t h = 0; h < H; ++h) {
              std::vector<double> query(size_t(D), 0.0);
              for (int64_t j = 0; j < D; ++j)
                if (factorised_query)
                  for (int64_t r = 0; r < Rq; ++r)
                    query[size_t(j)] += double(A_q[size_t((n * H + h) * Rq + r)]) * B_q[size_t((n * Rq + r) * D + j)] / double(Rq);
                else
                  query[size_t(j)] = q[size_t((n * H + h) * D + j)];
              std::vector<double> scores;
              std::vector<std::vector<double>> values;
              for (int64_t t = 0; t < rows.length[size_t(n)]; ++t) {
                double s = 0;
                values.emplace_back(size_t(D), 0.0);
                for (int64_t j = 0; j < D; ++j) {
                  double key = 0;
                  for (int64_t r = 0; r < R; ++r) {
                    key += double(A_k.at(slot, t, r, h)) * B_k.at(slot, t, r, j) / double(R);
                    values.back()[size_t(j)] += double(A_v.at(slot, t, r, h)) * B_v.at(slot, t, r, j) / double(R);
                  }
                  s += query[size_t(j)] * key;
                }
                scores.push_back(s / std::sqrt(double(D)));
              }
              reference_softmax(expected.data() + (n * H + h) * D, scores, values);
            }
          }
          ops::TpaDecodeQuery query;
          if (factorised_query)
            query.A_q = Tensor(const_cast<float*>(A_q.data()), {N, H, Rq}, DType::F32),
            query.B_q = Tensor(const_cast<float*>(B_q.data()), {N, Rq, D}, DType::F32);
          else
            query.q = Tensor(const_cast<float*>(q.data()), {N, H, D}, DType::F32);
          for (ops::TpaDecodeOrder order : {ops::TpaDecodeOrder::factorised, ops::TpaDecodeOrder::materialised}) {
            std::vector<float> first;
            for (int64_t block : kBlocks)
              for (int threads : kThreads) {
                DecodeCallRows blocked = rows;
                blocked.view.block_tokens = block;
                Workspace workspace(
                    threads, ops::tpa_decode_thread_elements(H, D, R, factorised_query ? Rq : 0, block, order, dtype),
                    ops::decode_partial_elements(H, D));
                std::vector<float> y(size_t(N * H * D));
                ops::tpa_decode_attention(Tensor(y.data(), {N, H, D}, DType::F32), query, cache, blocked.view, order,
                                          workspace.view);
                const std::string what =
                    str(factorised_query ? "T6" : "KVonly", order == ops::TpaDecodeOrder::factorised ? " factorised " : " materialised ",
                        dtype_name(dtype), ", H ", H, ", Rq ", Rq, ", R ", R, ", length ", length, ", block ", block,
                        ", ", threads, " threads");
                expect_close(y, expected, what);
                if (block == kBlocks[0] && threads == 1) first = y;
                if (block == kBlocks[0]) {
                  EXPECT_EQ(std::memcmp(first.data(), y.data(), y.size() * sizeof(float)), 0) << what << ": not bit-identical to 1 thread";
                }
              }
          }
        }
    }
}

TEST(DecodeAttention, RowsOutsideTheCacheAreRefused) {
  const int64_t H = 2, D = 16;
  std::vector<float> k(size_t(2 * 10 * H * D)), q(size_t(H * D)), y(size_t(H * D));
  const Tensor cache(k.data(), {2, 10, H, D}, DType::F32);
  Workspace workspace(1, ops::kv_decode_thread_elements(H, H, D, D, 4, DType::F32), ops::decode_partial_elements(H, D));
  for (auto [slot, length] : {std::pair<int64_t, int64_t>{2, 5}, {0, 11}, {1, 0}}) {
    const ops::DecodeRows rows{Tensor(&slot, {1}, DType::I64), Tensor(&length, {1}, DType::I64), 4};
    try {
      ops::kv_decode_attention(Tensor(y.data(), {1, H, D}, DType::F32), Tensor(q.data(), {1, H, D}, DType::F32), cache,
                               cache, rows, workspace.view);
      ADD_FAILURE() << "slot " << slot << ", length " << length << " accepted";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(str("positions [0, ", length, ") of slot ", slot)), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace t6
