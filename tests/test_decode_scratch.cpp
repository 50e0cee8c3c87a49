// ctest-labels: infer
// The decode attention's scratch (kernels/ops.h, *_decode_thread_elements): its size is the hand
// formula for head counts that are not a multiple of the lanes, blocks that are not a multiple of the
// alignment, and both cache dtypes; a call writes nothing past it and refuses one element less; the
// decoder plans one slice per OpenMP thread for a row's heads (every kind, both TPA orders) and the
// partial states of cut rows, decodes bit-identically with 1 and 3 threads over a cache long enough
// to cut a row into pieces, and a decode step allocates nothing (malloc counted), in fp32 and bf16.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstring>
#include <random>

#include "common/error_expectations.h"
#include "common/training_setup.h"
#include "core/bf16.h"
#include "infer/decoder.h"

// Every malloc, calloc and realloc of the process (operator new included) while counting is on.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace
extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* malloc(size_t bytes) {
  if (g_counting) ++g_allocations;
  return __libc_malloc(bytes);
}
extern "C" void* calloc(size_t count, size_t bytes) {
  if (g_counting) ++g_allocations;
  return __libc_calloc(count, bytes);
}
extern "C" void* realloc(void* pointer, size_t bytes) {
  if (g_counting) ++g_allocations;
  return __libc_realloc(pointer, bytes);
}

namespace t6::infer {
namespace {

constexpr ModelKind kKinds[] = {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa,
                                ModelKind::llama_mla};

int64_t aligned(int64_t elements) { return (elements + 63) / 64 * 64; }  // 256-byte views (ScratchCursor)
int64_t padded(int64_t heads) { return (heads + 7) / 8 * 8; }             // score rows, ranks: whole 8-float lanes

// Every call: each padded head's maximum, sum and rescale factor, the output (heads × value width).
int64_t state_elements(int64_t heads, int64_t width) { return 3 * aligned(padded(heads)) + aligned(heads * width); }

// Plain attention: the block's scores (block × padded heads); a BF16 cache adds the block's k and v in fp32.
int64_t expected_kv(int64_t heads, int64_t kv_heads, int64_t key, int64_t value, int64_t block, DType dtype) {
  int64_t elements = state_elements(heads, value) + aligned(block * padded(heads));
  if (dtype == DType::BF16) elements += aligned(block * kv_heads * key) + aligned(block * kv_heads * value);
  return elements;
}

// TPA: factorised, the rank pairs (block·R × Rq padded to a lane), B̃_qᵀ (D × padded Rq) and A_qᵀ
// (Rq × padded heads) of a T6 query, then the
// mixed scores, block scores and value weights (block·R, block, block·R × padded heads); materialised,
// the query (H × D), the block's k and v (block × H·D) and its scores. A BF16 cache adds the four
// factor blocks in fp32.
int64_t expected_tpa(int64_t H, int64_t D, int64_t R, int64_t Rq, int64_t block, TpaDecodeOrder order, DType dtype) {
  const int64_t Hp = padded(H);
  int64_t elements = state_elements(H, D);
  if (order == TpaDecodeOrder::factorised) {
    if (Rq > 0) elements += aligned(block * R * padded(Rq)) + aligned(D * padded(Rq)) + aligned(Rq * Hp);
    elements += 2 * aligned(block * R * Hp) + aligned(block * Hp);
  } else {
    elements += aligned(H * D) + 2 * aligned(block * H * D) + aligned(block * Hp);
  }
  if (dtype == DType::BF16) elements += 2 * aligned(block * R * H) + 2 * aligned(block * R * D);
  return elements;
}

// What a kind's decode attention needs per thread, by the formulas above.
int64_t expected_thread_elements(const ModelConfig& config, int64_t block, TpaDecodeOrder order, DType dtype) {
  if (config.factorised_kv())
    return expected_tpa(config.n_head, config.head_dim, config.rank, config.factorised_query() ? config.q_rank : 0,
                        block, order, dtype);
  if (config.latent_attention()) {
    const int64_t key = config.kv_lora_rank + config.qk_rope_head_dim;
    return expected_kv(config.n_head, 1, key, key, block, dtype);
  }
  return expected_kv(config.n_head, config.kv_heads(), config.head_dim, config.head_dim, block, dtype);
}

// The value width of a kind's partial states: D, or MLA's latent row Ckv + Dr.
int64_t value_width(const ModelConfig& config) {
  return config.latent_attention() ? config.kv_lora_rank + config.qk_rope_head_dim : config.head_dim;
}

std::vector<TpaDecodeOrder> orders_of(const ModelConfig& config) {
  if (config.factorised_kv()) return {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised};
  return {TpaDecodeOrder::factorised};  // ignored by k/v and latent caches
}

void fill_uniform(std::vector<float>& values, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  for (float& value : values) value = uniform(generator);
}

// Sets OpenMP's thread count for a scope.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(DecodeScratch, SizesAreTheFormula) {
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t heads : {1, 3, 9})
      for (int64_t block : {1, 5, 256}) {
        EXPECT_EQ(ops::kv_decode_thread_elements(heads, 1, 24, 20, block, dtype), expected_kv(heads, 1, 24, 20, block, dtype));
        for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised})
          for (int64_t Rq : {0, 6})
            EXPECT_EQ(ops::tpa_decode_thread_elements(heads, 16, 2, Rq, block, order, dtype),
                      expected_tpa(heads, 16, 2, Rq, block, order, dtype))
                << heads << " heads, block " << block << ", Rq " << Rq << ", " << tpa_decode_order_name(order);
      }
  EXPECT_EQ(ops::decode_partial_elements(5, 24), 5 * 26);
}

// A thread scratch of exactly the call's size surrounded by sentinels: the call leaves them alone,
// and one element less is refused naming the sizes.
template <class Call>
void check_exact_scratch(int64_t needed, int64_t partial, Call call, const std::string& what) {
  constexpr float kSentinel = 12345.0f;
  constexpr int64_t kGuard = 64;
  std::vector<float> space(size_t(needed + 2 * kGuard), kSentinel), partials(size_t(ops::kDecodePartialStates * partial));
  const Tensor partials_view(partials.data(), {ops::kDecodePartialStates, partial}, DType::F32);
  call(ops::DecodeWorkspace{Tensor(space.data() + kGuard, {1, needed}, DType::F32), partials_view});
  for (int64_t i = 0; i < kGuard; ++i) {
    ASSERT_EQ(space[size_t(i)], kSentinel) << what << ": written before the scratch";
    ASSERT_EQ(space[size_t(kGuard + needed + i)], kSentinel) << what << ": written past the scratch";
  }
  testing::expect_mentions(
      testing::error_of([&] {
        call(ops::DecodeWorkspace{Tensor(space.data() + kGuard, {1, needed - 1}, DType::F32), partials_view});
      }),
      {"scratch of " + std::to_string(needed - 1), std::to_string(needed) + " needed"});
}

TEST(DecodeScratch, ACallStaysInsideItsScratchAndRefusesLess) {
  const int64_t H = 6, Hkv = 2, D = 16, R = 2, Rq = 6, length = 11, block = 5;
  for (DType dtype : {DType::F32, DType::BF16}) {
    // One slot of `length` positions; a BF16 cache reads the same memory as half as many numbers.
    std::vector<float> k(size_t(length * Hkv * D)), v(k.size()), q(size_t(H * D)), y(size_t(H * D));
    fill_uniform(k, 1), fill_uniform(v, 2), fill_uniform(q, 3);
    int64_t slot = 0, rows_length = length;
    const ops::DecodeRows rows{Tensor(&slot, {1}, DType::I64), Tensor(&rows_length, {1}, DType::I64), block};
    const Tensor k_view(k.data(), {1, length, Hkv, D}, dtype), v_view(v.data(), {1, length, Hkv, D}, dtype);
    check_exact_scratch(
        ops::kv_decode_thread_elements(H, Hkv, D, D, block, dtype), ops::decode_partial_elements(H, D),
        [&](const ops::DecodeWorkspace& workspace) {
          ops::kv_decode_attention(Tensor(y.data(), {1, H, D}, DType::F32), Tensor(q.data(), {1, H, D}, DType::F32),
                                   k_view, v_view, rows, workspace);
        },
        str("kv cache ", dtype_name(dtype)));

    std::vector<float> A_k(size_t(length * H * R)), B_k(size_t(length * R * D)), A_v(A_k.size()), B_v(B_k.size());
    std::vector<float> A_q(size_t(H * Rq)), B_q(size_t(Rq * D));
    fill_uniform(A_k, 4), fill_uniform(B_k, 5), fill_uniform(A_v, 6), fill_uniform(B_v, 7);
    fill_uniform(A_q, 8), fill_uniform(B_q, 9);
    const ops::TpaFactorCache cache{
        Tensor(A_k.data(), {1, length, R, H}, dtype), Tensor(B_k.data(), {1, length, R, D}, dtype),
        Tensor(A_v.data(), {1, length, R, H}, dtype), Tensor(B_v.data(), {1, length, R, D}, dtype)};
    ops::TpaDecodeQuery factorised_query, plain_query;
    factorised_query.A_q = Tensor(A_q.data(), {1, H, Rq}, DType::F32);
    factorised_query.B_q = Tensor(B_q.data(), {1, Rq, D}, DType::F32);
    plain_query.q = Tensor(q.data(), {1, H, D}, DType::F32);
    for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised})
      for (const ops::TpaDecodeQuery* query : {&factorised_query, &plain_query})
        check_exact_scratch(
            ops::tpa_decode_thread_elements(H, D, R, query->A_q.empty() ? 0 : Rq, block, order, dtype),
            ops::decode_partial_elements(H, D),
            [&](const ops::DecodeWorkspace& workspace) {
              ops::tpa_decode_attention(Tensor(y.data(), {1, H, D}, DType::F32), *query, cache, rows, order, workspace);
            },
            str("factor cache ", dtype_name(dtype), ", ", tpa_decode_order_name(order),
                query->A_q.empty() ? ", KVonly query" : ", T6 query"));
  }
}

TEST(DecodeScratch, TheDecoderPlansOneSliceAThreadForARowsHeads) {
  for (ModelKind kind : kKinds) {
    const ModelConfig config = testing::fixture_model_config(kind);
    const ModelWeights weights(config, 0, 1, 1, false);
    for (DType dtype : {DType::F32, DType::BF16})
      for (TpaDecodeOrder order : orders_of(config))
        for (int threads : {1, 3}) {
          const ThreadCount count(threads);
          const Decoder decoder(weights, 2, 40, DecodeOptions{5, order, 8, dtype});
          const int64_t per_thread = expected_thread_elements(config, 5, order, dtype);
          const int64_t partials = ops::kDecodePartialStates * (config.n_head * (value_width(config) + 2));
          EXPECT_EQ(decoder.attention_threads(), threads) << model_kind_name(kind);
          EXPECT_EQ(decoder.attention_scratch_bytes(), size_t(threads * per_thread + partials) * sizeof(float))
              << model_kind_name(kind) << " " << tpa_decode_order_name(order) << " " << dtype_name(dtype);
          EXPECT_GT(decoder.buffer_bytes(), decoder.attention_scratch_bytes());
        }
  }
}

// Random entries in positions [0, context) of every slot, as if that many tokens were prefilled.
void fill_cache(Decoder& decoder, int64_t context) {
  KvCache& cache = decoder.cache();
  for (int64_t layer = 0; layer < decoder.config().n_layer; ++layer)
    for (size_t field = 0; field < cache.fields().size(); ++field)
      for (int64_t slot = 0; slot < cache.slots(); ++slot) {
        const Tensor rows = cache.field(layer, field, slot).rows(0, context);
        std::vector<float> values(size_t(rows.numel()));
        fill_uniform(values, uint32_t(layer * 64 + int64_t(field) * 8 + slot));
        if (rows.dtype() == DType::BF16)
          for (size_t i = 0; i < values.size(); ++i) static_cast<uint16_t*>(rows.raw())[i] = float_to_bf16_bits(values[i]);
        else
          std::copy(values.begin(), values.end(), rows.data<float>());
      }
  for (int64_t slot = 0; slot < cache.slots(); ++slot) cache.set_length(slot, context);
}

// Logits of one decode step, counting the allocations of append and logits.
std::vector<float> decode_step(Decoder& decoder, const std::vector<SlotToken>& tokens, int64_t& allocations) {
  const int64_t N = int64_t(tokens.size()), d = decoder.config().n_embd, V = decoder.config().vocab_size;
  std::vector<float> hidden(size_t(N * d)), logits(size_t(N * V));
  const Tensor hidden_view(hidden.data(), {N, d}, DType::F32), logits_view(logits.data(), {N, V}, DType::F32);
  g_allocations = 0, g_counting = true;
  decoder.append(tokens, hidden_view);
  decoder.logits(hidden_view, logits_view);
  g_counting = false, allocations = g_allocations;
  return logits;
}

TEST(DecodeScratch, OneAndThreeThreadsDecodeBitIdenticallyAndAllocateNothing) {
  // 16384 cached positions of 4 heads or more: past the op's threshold for running threaded, and a
  // row is cut into pieces (32 for one row, 32 each for two), merged by log-sum-exp.
  const int64_t context = 16384;
  const ThreadCount blas_threads(3);  // the same for both decoders' projections
  for (ModelKind kind : kKinds) {
    ModelConfig config = testing::fixture_model_config(kind);
    ModelWeights weights(config, 0, 1, 1, false);
    std::vector<float> params(size_t(weights.params().numel()));
    fill_uniform(params, 5);
    std::copy(params.begin(), params.end(), weights.params().data<float>());
    for (DType dtype : {DType::F32, DType::BF16})
      for (TpaDecodeOrder order : orders_of(config)) {
        const std::string what = str(model_kind_name(kind), " ", tpa_decode_order_name(order), " ", dtype_name(dtype));
        std::vector<std::vector<float>> logits[2];
        for (int threads : {1, 3}) {
          std::unique_ptr<Decoder> decoder;
          {
            const ThreadCount count(threads);  // the decoder's attention threads
            decoder = std::make_unique<Decoder>(weights, 2, context + 4, DecodeOptions{256, order, 8, dtype});
          }
          ASSERT_EQ(decoder->attention_threads(), threads);
          fill_cache(*decoder, context);
          std::vector<std::vector<float>>& out = logits[threads == 1 ? 0 : 1];
          int64_t allocations = 0;
          out.push_back(decode_step(*decoder, {{0, 17}, {1, 42}}, allocations));  // warms OpenMP and OpenBLAS up
          for (const std::vector<SlotToken>& step : {std::vector<SlotToken>{{0, 3}, {1, 99}}, std::vector<SlotToken>{{1, 7}},
                                                     std::vector<SlotToken>{{0, 64}}}) {
            out.push_back(decode_step(*decoder, step, allocations));
            EXPECT_EQ(allocations, 0) << what << ", " << threads << " threads, " << step.size() << " rows";
          }
        }
        for (size_t step = 0; step < logits[0].size(); ++step)
          EXPECT_EQ(std::memcmp(logits[0][step].data(), logits[1][step].data(), logits[0][step].size() * sizeof(float)), 0)
              << what << ": step " << step << " differs between 1 and 3 threads";
      }
  }
}

}  // namespace
}  // namespace t6::infer
