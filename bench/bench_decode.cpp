// Decoding speed and cache size of T6-small against its MHA, GQA and MLA baselines (random weights):
// for each context length and batch, the cache is filled with random entries (as if that many
// tokens were prefilled) and a fixed number of decode steps is timed. Also the longest context each
// model fits in a cache budget. One row per (model, TPA decode order, batch, context); configurations
// whose cache exceeds the budget are reported and skipped.
//   build/bin/bench_decode [--models t6,mha,gqa,mla] [--orders factorised,materialised] [--contexts 1024,8192,32768]
//                          [--batches 1,8] [--steps 4] [--budget 4GiB]
// Last line: RESULT bench_decode t6_<order>_tok_s_<batch>_<context>=... mha_tok_s_...=... gqa_tok_s_...=...
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "infer/byte_size.h"
#include "infer/decoder.h"

using namespace t6;
using namespace t6::infer;

namespace {

struct BenchModel {
  std::string name;
  ModelConfig config;
};

std::vector<BenchModel> small_models() {
  ModelConfig t6;  // the defaults are T6-small
  ModelConfig mha = t6, gqa = t6, mla = t6;
  mha.kind = ModelKind::llama_mha, mha.n_head = 12, mha.head_dim = 64;
  gqa.kind = ModelKind::llama_gqa, gqa.n_head = 22, gqa.head_dim = 64, gqa.group_size = 11;
  mla.kind = ModelKind::llama_mla, mla.n_head = 13;  // the MLA defaults (Dr 32, Cq 512, Ckv 256, Dv 64) are MLA-small's
  return {{"t6", t6}, {"mha", mha}, {"gqa", gqa}, {"mla", mla}};
}

// Uniform values in [−0.5, 0.5) from a xorshift stream: filling gigabytes must be cheap.
void fill_random(const Tensor& tensor, uint64_t seed) {
  float* data = tensor.data<float>();
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    data[i] = float(state >> 40) * 0x1.0p-24f - 0.5f;
  }
}

struct DecodeRun {
  double tokens_per_s = 0;
  std::string buffers;  // the decoder's buffers besides the cache, with its attention scratch
};

// Decode tokens/s over `steps` steps from a cache holding `context` random tokens per sequence, and
// the decoder's buffers.
DecodeRun time_decode(const ModelWeights& weights, int64_t batch, int64_t context, int64_t steps,
                      TpaDecodeOrder order) {
  Decoder decoder(weights, batch, context + steps, DecodeOptions{256, order, 256});
  KvCache& cache = decoder.cache();
  for (int64_t layer = 0; layer < weights.config().n_layer; ++layer)
    for (size_t field = 0; field < cache.fields().size(); ++field)
      for (int64_t slot = 0; slot < batch; ++slot)
        fill_random(cache.field(layer, field, slot).rows(0, context), uint64_t(layer * 64 + int64_t(field) * 8 + slot));
  for (int64_t slot = 0; slot < batch; ++slot) cache.set_length(slot, context);
  std::vector<SlotToken> tokens;
  for (int64_t slot = 0; slot < batch; ++slot) tokens.push_back({slot, int32_t(100 + slot)});
  std::vector<float> hidden(size_t(batch * weights.config().n_embd)), logits(size_t(batch * weights.config().vocab_size));
  const Tensor hidden_view(hidden.data(), {batch, weights.config().n_embd}, DType::F32);
  const Tensor logits_view(logits.data(), {batch, weights.config().vocab_size}, DType::F32);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    decoder.append(tokens, hidden_view);
    decoder.logits(hidden_view, logits_view);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {double(batch * steps) / seconds, decoder.describe_buffers()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode tokens/s and cache bytes per token: T6-small vs MHA-, GQA- and MLA-small (random weights)"};
  std::vector<int64_t> contexts = {1024, 8192, 32768}, batches = {1, 8};
  std::vector<std::string> model_names = {"t6", "mha", "gqa", "mla"}, order_names = {"factorised"};
  int64_t steps = 4;
  std::string budget_text = "4GiB";
  app.add_option("--models", model_names, "models to run")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"t6", "mha", "gqa", "mla"}));
  app.add_option("--orders", order_names, "TPA decode orders to run (T6 only): factorised, materialised")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"factorised", "materialised"}));
  app.add_option("--contexts", contexts, "cached tokens per sequence")->delimiter(',')->capture_default_str();
  app.add_option("--batches", batches, "sequences decoded together")->delimiter(',')->capture_default_str();
  app.add_option("--steps", steps, "decode steps timed per configuration")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--budget", budget_text, "cache budget (skip configurations above it)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    const uint64_t budget = parse_byte_size(budget_text, "--budget");
    std::string result = "RESULT bench_decode";
    std::printf("%-5s %-12s %6s %8s %14s %12s %12s   %s\n", "model", "order", "batch", "context", "cache B/token",
                "cache", "decode tok/s", "buffers besides the cache");
    for (const BenchModel& model : small_models()) {
      if (std::find(model_names.begin(), model_names.end(), model.name) == model_names.end()) continue;
      ModelWeights weights(model.config, 0, 1, 1, false);
      weights.initialise(1);
      const int64_t per_token = cache_bytes_per_token(model.config);
      // The order only matters to the factor cache; MHA and GQA run once.
      const std::vector<std::string> orders =
          model.config.factorised_kv() ? order_names : std::vector<std::string>{"-"};
      for (int64_t batch : batches)  // the orders innermost, so that both see the same load
        for (int64_t context : contexts)
          for (const std::string& order_name : orders) {
            const uint64_t bytes = uint64_t(batch * (context + steps) * per_token);
            std::printf("%-5s %-12s %6lld %8lld %14lld %12s ", model.name.c_str(), order_name.c_str(),
                        (long long)batch, (long long)context, (long long)per_token, format_bytes(bytes).c_str());
            if (bytes > budget) {
              std::printf("%12s\n", "over budget");
              continue;
            }
            const TpaDecodeOrder order =
                order_name == "-" ? TpaDecodeOrder::factorised : tpa_decode_order_from_name(order_name);
            const DecodeRun run = time_decode(weights, batch, context, steps, order);
            std::printf("%12.2f   %s\n", run.tokens_per_s, run.buffers.c_str());
            std::fflush(stdout);
            const std::string label = order_name == "-" ? model.name : str(model.name, "_", order_name);
            result += str(" ", label, "_tok_s_", batch, "_", context, "=", run.tokens_per_s);
          }
      std::printf("%-5s longest context in %s: %lld tokens at batch 1, %lld at batch 8\n", model.name.c_str(),
                  format_bytes(budget).c_str(), (long long)(budget / uint64_t(per_token)),
                  (long long)(budget / uint64_t(8 * per_token)));
      result += str(" ", model.name, "_bytes_per_token=", per_token, " ", model.name, "_max_context_1=", budget / uint64_t(per_token));
    }
    std::printf("%s\n", result.c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_decode: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
