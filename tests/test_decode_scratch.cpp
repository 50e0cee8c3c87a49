// ctest-labels: infer
// The decode attention's scratch (src/infer/cache_attention.h): its size is the hand formula for
// heads ranges of uneven size and blocks that are not a multiple of the alignment; a call writes
// nothing past it and refuses one element less; the decoder plans one slice per OpenMP thread for a
// row's heads (every kind, both TPA orders), decodes bit-identically with 1 and 3 threads over a
// cache long enough to run threaded, and a decode step allocates nothing (malloc counted).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstring>
#include <random>

#include "common/error_expectations.h"
#include "common/training_setup.h"
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

int64_t aligned(int64_t elements) { return (elements + 15) / 16 * 16; }  // 64-byte views

// Per head: maximum, sum, accumulator (width), block scores; materialised: query, block k and v.
int64_t expected_elements(int64_t heads, int64_t width, int64_t block, bool materialised) {
  int64_t elements = 2 * aligned(heads) + aligned(heads * width) + aligned(heads * block);
  if (materialised) elements += aligned(heads * width) + 2 * aligned(block * heads * width);
  return elements;
}

// The key width a kind's decode attention runs over: D, or MLA's latent row Ckv + Dr.
int64_t key_width(const ModelConfig& config) {
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
  for (int64_t heads : {1, 3, 5})
    for (int64_t block : {1, 5, 256}) {
      EXPECT_EQ(kv_cache_scratch_elements(heads, 24, block), expected_elements(heads, 24, block, false));
      EXPECT_EQ(factor_cache_scratch_elements(heads, 16, block, TpaDecodeOrder::factorised),
                expected_elements(heads, 16, block, false));
      EXPECT_EQ(factor_cache_scratch_elements(heads, 16, block, TpaDecodeOrder::materialised),
                expected_elements(heads, 16, block, true));
    }
}

// A scratch of exactly the call's size surrounded by sentinels: the call leaves them alone, and one
// element less is refused naming the scratch.
template <class Call>
void check_exact_scratch(int64_t needed, Call call, const std::string& what) {
  constexpr float kSentinel = 12345.0f;
  constexpr int64_t kGuard = 64;
  std::vector<float> space(size_t(needed + 2 * kGuard), kSentinel);
  call(Tensor(space.data() + kGuard, {needed}, DType::F32));
  for (int64_t i = 0; i < kGuard; ++i) {
    ASSERT_EQ(space[size_t(i)], kSentinel) << what << ": written before the scratch";
    ASSERT_EQ(space[size_t(kGuard + needed + i)], kSentinel) << what << ": written past the scratch";
  }
  testing::expect_mentions(testing::error_of([&] { call(Tensor(space.data() + kGuard, {needed - 1}, DType::F32)); }),
                           {"scratch of " + std::to_string(needed - 1), std::to_string(needed) + " needed"});
}

TEST(DecodeScratch, ACallStaysInsideItsScratchAndRefusesLess) {
  const int64_t H = 6, Hkv = 2, D = 16, R = 2, Rq = 6, length = 11, block = 5;
  const HeadRange heads{1, 4};  // three heads, across both KV heads
  std::vector<float> k(size_t(length * Hkv * D)), v(k.size()), q(size_t(H * D)), y(size_t(H * D));
  fill_uniform(k, 1), fill_uniform(v, 2), fill_uniform(q, 3);
  const Tensor k_view(k.data(), {length, Hkv, D}, DType::F32), v_view(v.data(), {length, Hkv, D}, DType::F32);
  check_exact_scratch(
      kv_cache_scratch_elements(3, D, block),
      [&](const Tensor& scratch) {
        attend_kv_cache(y.data(), q.data(), k_view, v_view, length, H / Hkv, heads, block, scratch);
      },
      "kv cache");

  std::vector<float> A_k(size_t(length * H * R)), B_k(size_t(length * R * D)), A_v(A_k.size()), B_v(B_k.size());
  std::vector<float> A_q(size_t(H * Rq)), B_q(size_t(Rq * D));
  fill_uniform(A_k, 4), fill_uniform(B_k, 5), fill_uniform(A_v, 6), fill_uniform(B_v, 7);
  fill_uniform(A_q, 8), fill_uniform(B_q, 9);
  const FactorCache cache{Tensor(A_k.data(), {length, H, R}, DType::F32), Tensor(B_k.data(), {length, R, D}, DType::F32),
                          Tensor(A_v.data(), {length, H, R}, DType::F32), Tensor(B_v.data(), {length, R, D}, DType::F32)};
  FactorQuery factorised_query;
  factorised_query.A_q = A_q.data(), factorised_query.B_q = B_q.data(), factorised_query.q_rank = Rq;
  FactorQuery plain_query;
  plain_query.q = q.data();
  for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised})
    for (const FactorQuery* query : {&factorised_query, &plain_query})
      check_exact_scratch(
          factor_cache_scratch_elements(3, D, block, order),
          [&](const Tensor& scratch) {
            attend_factor_cache(y.data(), *query, cache, length, heads, block, order, scratch);
          },
          str("factor cache, ", tpa_decode_order_name(order), query->A_q ? ", T6 query" : ", KVonly query"));
}

TEST(DecodeScratch, TheDecoderPlansOneSliceAThreadForARowsHeads) {
  for (ModelKind kind : kKinds) {
    const ModelConfig config = testing::fixture_model_config(kind);
    const ModelWeights weights(config, 0, 1, 1, false);
    for (TpaDecodeOrder order : orders_of(config))
      for (int threads : {1, 3}) {
        const ThreadCount count(threads);
        const Decoder decoder(weights, 2, 40, DecodeOptions{5, order, 8});
        const int64_t per_thread =
            expected_elements(config.n_head, key_width(config), 5, order == TpaDecodeOrder::materialised);
        EXPECT_EQ(decoder.attention_threads(), threads) << model_kind_name(kind);
        EXPECT_EQ(decoder.attention_scratch_bytes(), size_t(threads * per_thread) * sizeof(float))
            << model_kind_name(kind) << " " << tpa_decode_order_name(order);
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
  // 16384 cached positions of 4 heads or more: past for_rows_and_heads' threshold for a single row.
  const int64_t context = 16384;
  const ThreadCount blas_threads(3);  // the same for both decoders' projections
  for (ModelKind kind : kKinds) {
    ModelConfig config = testing::fixture_model_config(kind);
    ModelWeights weights(config, 0, 1, 1, false);
    std::vector<float> params(size_t(weights.params().numel()));
    fill_uniform(params, 5);
    std::copy(params.begin(), params.end(), weights.params().data<float>());
    for (TpaDecodeOrder order : orders_of(config)) {
      const std::string what = str(model_kind_name(kind), " ", tpa_decode_order_name(order));
      std::vector<std::vector<float>> logits[2];
      for (int threads : {1, 3}) {
        std::unique_ptr<Decoder> decoder;
        {
          const ThreadCount count(threads);  // the decoder's attention threads
          decoder = std::make_unique<Decoder>(weights, 2, context + 4, DecodeOptions{256, order, 8});
        }
        ASSERT_EQ(decoder->attention_threads(), threads);
        fill_cache(*decoder, context);
        std::vector<std::vector<float>>& out = logits[threads == 1 ? 0 : 1];
        int64_t allocations = 0;
        out.push_back(decode_step(*decoder, {{0, 17}, {1, 42}}, allocations));  // warms OpenMP and OpenBLAS up
        for (const std::vector<SlotToken>& step :
             {std::vector<SlotToken>{{0, 3}, {1, 99}}, std::vector<SlotToken>{{1, 7}}, std::vector<SlotToken>{{0, 64}}}) {
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
