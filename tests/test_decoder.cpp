// ctest-labels: infer
// ctest-timeout: 120
// Incremental decoding (src/infer/decoder.h) against the model's full forward on the same weights:
// for every model kind (MLA over its latent cache, values narrower than keys), a batch of sequences of different lengths, prefilled in one packed call and
// then decoded token by token, with cache blocks shorter than the prompts, gives the forward's
// logits at every position within 1e-5 of the row's largest logit (a bf16 cache within 3e-2); both
// TPA decode orders agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error_expectations.h"
#include "common/training_setup.h"
#include "infer/decode_backend.h"
#include "infer/decoder.h"
#include "model/language_model.h"

namespace t6::infer {
namespace {

constexpr ModelKind kKinds[] = {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa,
                                ModelKind::llama_mla};

// The fixtures' model of `kind`; MLA with value heads (12) narrower than its query/key heads
// (16 + 8), and a latent (20) of another width than they, so the absorbed keys (20 + 8) are too.
ModelConfig decoder_config(ModelKind kind) {
  ModelConfig config = testing::fixture_model_config(kind);
  if (config.latent_attention()) config.v_head_dim = 12, config.kv_lora_rank = 20;
  return config;
}

// Every parameter random (initialisation zeroes both c_proj, which would hide the attention).
void randomise(ModelWeights& weights, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-0.25f, 0.25f);
  float* data = weights.params().data<float>();
  for (int64_t i = 0; i < weights.params().numel(); ++i) data[i] = uniform(generator);
}

struct Reference {
  std::vector<std::vector<int32_t>> sequences;  // each sequence's tokens
  std::vector<float> logits;                    // (B, T, V) of the full forward
  int64_t T = 0, V = 0;
  const float* row(size_t sequence, int64_t position) const {
    return logits.data() + (int64_t(sequence) * T + position) * V;
  }
};

Reference full_forward(LanguageModel& model, const std::vector<int64_t>& lengths, uint32_t seed) {
  Reference reference;
  reference.T = model.seq_len();
  reference.V = model.config().vocab_size;
  std::mt19937 generator(seed);
  std::vector<int32_t> inputs(size_t(model.micro_batch() * reference.T), 0);  // padding after each sequence
  for (size_t b = 0; b < lengths.size(); ++b) {
    std::vector<int32_t> tokens;
    for (int64_t t = 0; t < lengths[b]; ++t) tokens.push_back(int32_t(generator() % uint32_t(reference.V)));
    std::copy(tokens.begin(), tokens.end(), inputs.begin() + int64_t(b) * reference.T);
    reference.sequences.push_back(tokens);
  }
  reference.logits.resize(inputs.size() * size_t(reference.V));
  model.forward_logits(Tensor(inputs.data(), {model.micro_batch(), reference.T}, DType::I32),
                       Tensor(reference.logits.data(), {model.micro_batch(), reference.T, reference.V}, DType::F32));
  return reference;
}

// Largest |decoded − forward| over a row, relative to the row's largest |logit|.
double relative_error(const float* decoded, const float* expected, int64_t V) {
  double largest = 0, error = 0;
  for (int64_t i = 0; i < V; ++i) {
    largest = std::max(largest, double(std::fabs(expected[i])));
    error = std::max(error, double(std::fabs(decoded[i] - expected[i])));
  }
  return error / largest;
}

// Prefills the first `prefill[b]` tokens of every sequence in one call, then decodes the rest one
// token per active sequence per call; checks every row's logits against the forward's.
void check_incremental(const ModelWeights& weights, const Reference& reference, const std::vector<int64_t>& prefill,
                       const DecodeOptions& options, const std::string& what, double tolerance = 1e-5) {
  const int64_t slots = int64_t(reference.sequences.size()), V = reference.V, d = weights.config().n_embd;
  Decoder decoder(weights, slots, reference.T, options);
  std::vector<float> hidden, logits;
  auto run = [&](const std::vector<SlotToken>& tokens) {
    hidden.assign(tokens.size() * size_t(d), 0.0f);
    logits.assign(tokens.size() * size_t(V), 0.0f);
    std::vector<int64_t> before(static_cast<size_t>(slots));
    for (int64_t s = 0; s < slots; ++s) before[size_t(s)] = decoder.length(s);
    const int64_t N = int64_t(tokens.size());
    decoder.append(tokens, Tensor(hidden.data(), {N, d}, DType::F32));
    decoder.logits(Tensor(hidden.data(), {N, d}, DType::F32), Tensor(logits.data(), {N, V}, DType::F32));
    for (int64_t i = 0; i < N; ++i) {
      const int64_t slot = tokens[size_t(i)].slot, position = before[size_t(slot)]++;
      EXPECT_LT(relative_error(logits.data() + i * V, reference.row(size_t(slot), position), V), tolerance)
          << what << ": sequence " << slot << ", position " << position;
    }
  };
  std::vector<SlotToken> prompt_tokens;
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t t = 0; t < prefill[size_t(s)]; ++t) prompt_tokens.push_back({s, reference.sequences[size_t(s)][size_t(t)]});
  run(prompt_tokens);
  for (bool active = true; active;) {
    std::vector<SlotToken> step;
    for (int64_t s = 0; s < slots; ++s) {
      const auto& sequence = reference.sequences[size_t(s)];
      if (decoder.length(s) < int64_t(sequence.size())) step.push_back({s, sequence[size_t(decoder.length(s))]});
    }
    active = !step.empty();
    if (active) run(step);
  }
}

TEST(Decoder, IncrementalDecodingEqualsTheFullForwardForEveryKind) {
  const std::vector<int64_t> lengths = {23, 9, 16}, prefill = {11, 6, 1};
  for (ModelKind kind : kKinds) {
    LanguageModel model(decoder_config(kind), 3, 24, nullptr, 1, false);
    randomise(model.weights(), 7);
    const Reference reference = full_forward(model, lengths, 11);
    for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised}) {
      // Blocks of 4 cache positions (prompts span several), and 8 rows per internal batch so the
      // 18-token packed prefill runs in three parts.
      check_incremental(model.weights(), reference, prefill, DecodeOptions{4, order, 8},
                        str(model_kind_name(kind), " ", tpa_decode_order_name(order)));
      if (!model.config().factorised_kv()) break;  // one order only for k/v caches
    }
  }
}

// A bf16 cache rounds every cached number to 8 significant bits (relative error up to 2^-9, about
// 2e-3, on each of k and v, or on both factors of each); the fixtures' random weights give scores of
// several units, which the softmax turns into probability errors of about 1%: the logits moved up to
// 1.45e-2 of the row's largest one (KVonly, GQA). Stated tolerance: 3e-2, for every kind and order,
// against the fp32 full forward. (test_decode_attention checks the bf16 path exactly against the
// rounded numbers.)
constexpr double kBf16CacheTolerance = 3e-2;

TEST(Decoder, ABf16CacheStaysWithinItsToleranceForEveryKind) {
  const std::vector<int64_t> lengths = {23, 9, 16}, prefill = {11, 6, 1};
  for (ModelKind kind : kKinds) {
    LanguageModel model(decoder_config(kind), 3, 24, nullptr, 1, false);
    randomise(model.weights(), 7);
    const Reference reference = full_forward(model, lengths, 11);
    for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised}) {
      check_incremental(model.weights(), reference, prefill, DecodeOptions{4, order, 8, DType::BF16},
                        str(model_kind_name(kind), " ", tpa_decode_order_name(order), " bf16"), kBf16CacheTolerance);
      if (!model.config().factorised_kv()) break;
    }
  }
}

TEST(Decoder, FactorisedAndMaterialisedOrdersAgree) {
  for (ModelKind kind : {ModelKind::T6, ModelKind::T6_kvonly}) {
    ModelWeights weights(testing::fixture_model_config(kind), 0, 1, 1, false);
    randomise(weights, 3);
    std::vector<float> hidden[2];
    for (TpaDecodeOrder order : {TpaDecodeOrder::factorised, TpaDecodeOrder::materialised}) {
      Decoder decoder(weights, 1, 40, DecodeOptions{16, order, 64});
      std::vector<SlotToken> tokens;
      for (int32_t t = 0; t < 37; ++t) tokens.push_back({0, int32_t((t * 37 + 5) % 128)});
      std::vector<float>& out = hidden[order == TpaDecodeOrder::factorised ? 0 : 1];
      out.assign(tokens.size() * 64, 0.0f);
      decoder.append(tokens, Tensor(out.data(), {int64_t(tokens.size()), 64}, DType::F32));
    }
    for (size_t i = 0; i < hidden[0].size(); ++i) ASSERT_NEAR(hidden[0][i], hidden[1][i], 1e-5) << model_kind_name(kind);
  }
}

TEST(Decoder, CacheBytesAreTheFormula) {
  for (ModelKind kind : kKinds) {
    const ModelConfig config = decoder_config(kind);
    const int64_t L = config.n_layer, H = config.n_head, D = config.head_dim, R = config.rank;
    int64_t per_token = config.factorised_kv() ? L * (R + R) * (H + D) : L * 2 * config.kv_heads() * D;
    if (config.latent_attention()) per_token = L * (config.kv_lora_rank + config.qk_rope_head_dim);
    EXPECT_EQ(cache_bytes_per_token(config), per_token * 4) << model_kind_name(kind);
    EXPECT_EQ(KvCache(config, 3, 50).bytes(), size_t(3 * 50 * per_token * 4)) << model_kind_name(kind);
    EXPECT_EQ(cache_bytes_per_token(config, DType::BF16), per_token * 2) << model_kind_name(kind);
    EXPECT_EQ(KvCache(config, 3, 50, DType::BF16).bytes(), size_t(3 * 50 * per_token * 2)) << model_kind_name(kind);
  }
  // docs/MODEL.md 1.3: T6-small caches 392 numbers per token and layer, its MHA baseline 1536.
  ModelConfig small;  // the defaults are T6-small
  EXPECT_EQ(cache_bytes_per_token(small), 12 * 392 * 4);
  small.kind = ModelKind::llama_mha, small.n_head = 12, small.head_dim = 64;
  EXPECT_EQ(cache_bytes_per_token(small), 12 * 1536 * 4);
  // docs/MODEL.md 3.1: MLA-small (Ckv 256, Dr 32, the config's defaults) caches 288.
  small.kind = ModelKind::llama_mla, small.n_head = 13;
  EXPECT_EQ(cache_bytes_per_token(small), 12 * 288 * 4);
}

TEST(Decoder, ASequencePastTheCacheIsAClearError) {
  ModelWeights weights(testing::fixture_model_config(ModelKind::T6), 0, 1, 1, false);
  Decoder decoder(weights, 1, 4);
  std::vector<float> hidden(5 * 64);
  const std::vector<SlotToken> tokens(5, SlotToken{0, 1});
  testing::expect_mentions(
      testing::error_of([&] { decoder.append(tokens, Tensor(hidden.data(), {5, 64}, DType::F32)); }),
      {"4 positions", "--max-context"});
}

// --backend: auto decodes MLA and the materialised order on the CPU; cuda refuses them with one line
// that says what to use instead, on every machine (before asking for a GPU).
TEST(Decoder, TheCudaBackendRefusesMlaAndTheMaterialisedOrderEverywhere) {
  const ModelConfig mla = decoder_config(ModelKind::llama_mla), t6 = decoder_config(ModelKind::T6);
  EXPECT_EQ(choose_decode_backend("auto", mla, TpaDecodeOrder::factorised).device, Device::CPU);
  EXPECT_EQ(choose_decode_backend("auto", t6, TpaDecodeOrder::materialised).device, Device::CPU);
  EXPECT_EQ(choose_decode_backend("cpu", t6, TpaDecodeOrder::factorised).device, Device::CPU);
  testing::expect_mentions(testing::error_of([&] { choose_decode_backend("cuda", mla, TpaDecodeOrder::factorised); }),
                           {"--backend cuda", "MLA", "--backend cpu"});
  testing::expect_mentions(testing::error_of([&] { choose_decode_backend("cuda", t6, TpaDecodeOrder::materialised); }),
                           {"--backend cuda", "factorised", "--decode-order"});
}

}  // namespace
}  // namespace t6::infer
