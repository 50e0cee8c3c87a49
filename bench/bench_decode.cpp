// Decoding speed and cache size of T6-small against its MHA, GQA and MLA baselines (random weights):
// for each context length and batch, the cache is filled with random entries (as if that many
// tokens were prefilled) and a fixed number of decode steps is timed. Also the longest context each
// model fits in a cache budget. One row per (model, TPA decode order, batch, context); configurations
// whose cache exceeds the budget are reported and skipped.
// Each row shows its distance to the roofline: a step reads the cache and every weight once and does
// the attention's and the matmuls' FLOPs; the bench measures this machine's read bandwidth and SGEMM
// rate first (kernels/peak_flops.h), and the roofline is the slower of bytes / bandwidth and
// FLOPs / SGEMM rate. The row gives the cache's GB/s, all GFLOP/s, and tokens/s as % of that bound.
//   build/bin/bench_decode [--models t6,mha,gqa,mla] [--orders factorised,materialised] [--contexts 1024,8192,32768]
//                          [--batches 1,8] [--steps 4] [--budget 4GiB] [--cache-dtype fp32|bf16] [--backend cpu|cuda]
// With --backend cuda the decoder, its weights and the cache are on GPU 0 (MLA and the materialised
// order, which decode on the CPU only, are skipped) and the roofline is the GPU's, measured now.
// Last line: RESULT bench_decode t6_<order>_tok_s_<batch>_<context>=... mha_tok_s_...=... gqa_tok_s_...=...
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "apps/openmp_wait_policy.h"
#include "core/bf16.h"
#include "core/device_memory.h"
#include "infer/byte_size.h"
#include "infer/decoder.h"
#include "kernels/device.h"
#include "kernels/peak_flops.h"

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

// Multiply-adds × 2 of one query row's attention over one cached position of one layer, in the order
// the decoder runs (kernels/ops.h): T6's factorised order forms the rank pairs, mixes them over the
// heads, weights A_v and sums B_v; the materialised one builds k and v and attends plainly.
double attention_flops_per_position(const ModelConfig& c, TpaDecodeOrder order) {
  const double H = double(c.n_head), D = double(c.head_dim), R = double(c.rank), Rq = double(c.q_rank);
  if (c.factorised_kv()) {
    if (order == TpaDecodeOrder::materialised) return 2 * (2 * H * R * D + 2 * H * D);
    const double scores = c.factorised_query() ? Rq * R * D + H * R * Rq : H * R * D;
    return 2 * (scores + 2 * H * R + H * R * D);
  }
  if (c.latent_attention()) return 2 * 2 * H * double(c.kv_lora_rank + c.qk_rope_head_dim);
  return 2 * 2 * H * D;
}

// The machine a row is measured against: read bandwidth and SGEMM rate of this process's threads.
struct Machine {
  double read_bytes_per_s = 0, sgemm_flops = 0;
};

struct DecodeRun {
  double tokens_per_s = 0;
  double cache_bytes_per_s = 0, flops_per_s = 0;
  double roofline_tokens_per_s = 0;
  const char* bound = "";  // which roofline binds: "memory" or "compute"
  std::string buffers;     // the decoder's buffers besides the cache, with its attention scratch
};

// Writes uniform numbers into a cache tensor of the cache's dtype, in host memory or on the GPU
// (through host staging).
void fill_cache_rows(const Tensor& rows, uint64_t seed, std::vector<float>& staging, std::vector<uint16_t>& bits) {
  if (rows.dtype() == DType::F32 && rows.device() == Device::CPU) return fill_random(rows, seed);
  staging.resize(size_t(rows.numel()));
  const Tensor values(staging.data(), rows.shape(), DType::F32);
  fill_random(values, seed);
  if (rows.dtype() == DType::F32) return copy_tensor(rows, values);
  bits.resize(staging.size());
  for (size_t i = 0; i < staging.size(); ++i) bits[i] = float_to_bf16_bits(staging[i]);
  const Tensor rounded(bits.data(), rows.shape(), DType::BF16);
  if (rows.device() == Device::CPU) std::copy(bits.begin(), bits.end(), static_cast<uint16_t*>(rows.raw()));
  else copy_tensor(rows, rounded);
}

// Decode tokens/s over `steps` steps from a cache holding `context` random tokens per sequence, the
// rates it reached, its roofline on `machine`, and the decoder's buffers.
DecodeRun time_decode(const ModelWeights& weights, int64_t batch, int64_t context, int64_t steps,
                      TpaDecodeOrder order, DType cache_dtype, const Machine& machine) {
  Decoder decoder(weights, batch, context + steps, DecodeOptions{256, order, 256, cache_dtype});
  KvCache& cache = decoder.cache();
  std::vector<float> staging;
  std::vector<uint16_t> bits;
  for (int64_t layer = 0; layer < weights.config().n_layer; ++layer)
    for (size_t field = 0; field < cache.fields().size(); ++field)
      for (int64_t slot = 0; slot < batch; ++slot)
        fill_cache_rows(cache.field(layer, field, slot).rows(0, context),
                        uint64_t(layer * 64 + int64_t(field) * 8 + slot), staging, bits);
  for (int64_t slot = 0; slot < batch; ++slot) cache.set_length(slot, context);
  std::vector<SlotToken> tokens;
  for (int64_t slot = 0; slot < batch; ++slot) tokens.push_back({slot, int32_t(100 + slot)});
  std::vector<float> hidden(size_t(batch * weights.config().n_embd)), logits(size_t(batch * weights.config().vocab_size));
  const Tensor hidden_view(hidden.data(), {batch, weights.config().n_embd}, DType::F32);
  const Tensor logits_view(logits.data(), {batch, weights.config().vocab_size}, DType::F32);
  if (weights.device() == Device::CUDA) {
    // One step first, outside the timing: cuBLASLt picks each shape's algorithm on its first call.
    decoder.append(tokens, hidden_view);
    decoder.logits(hidden_view, logits_view);
    for (int64_t slot = 0; slot < batch; ++slot) cache.set_length(slot, context);
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    decoder.append(tokens, hidden_view);
    decoder.logits(hidden_view, logits_view);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Per step: every row reads its sequence's cache (context + the steps so far, on average the
  // middle one) and the step reads every weight once; FLOPs are the attention's and 2 per weight a row.
  const ModelConfig& config = weights.config();
  const double positions = double(batch) * (double(context) + double(steps - 1) / 2);
  const double cache_bytes = positions * double(cache_bytes_per_token(config, cache_dtype));
  const double weight_bytes = double(weights.params().numel()) * sizeof(float);
  const double flops = positions * double(config.n_layer) * attention_flops_per_position(config, order) +
                       2.0 * double(weights.params().numel()) * double(batch);
  const double step_seconds = seconds / double(steps);
  const double memory_seconds = (cache_bytes + weight_bytes) / machine.read_bytes_per_s;
  const double compute_seconds = flops / machine.sgemm_flops;
  DecodeRun run;
  run.tokens_per_s = double(batch) / step_seconds;
  run.cache_bytes_per_s = cache_bytes / step_seconds;
  run.flops_per_s = flops / step_seconds;
  run.roofline_tokens_per_s = double(batch) / std::max(memory_seconds, compute_seconds);
  run.bound = memory_seconds >= compute_seconds ? "memory" : "compute";
  run.buffers = decoder.describe_buffers();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  use_passive_openmp_wait(argv);  // as the tools do (apps/openmp_wait_policy.h)
  CLI::App app{"Decode tokens/s and cache bytes per token: T6-small vs MHA-, GQA- and MLA-small (random weights)"};
  std::vector<int64_t> contexts = {1024, 8192, 32768}, batches = {1, 8};
  std::vector<std::string> model_names = {"t6", "mha", "gqa", "mla"}, order_names = {"factorised"};
  int64_t steps = 4;
  std::string budget_text = "4GiB", cache_dtype_name_text = "fp32", backend_name_text = "cpu";
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
  app.add_option("--cache-dtype", cache_dtype_name_text, "cache element type: fp32 or bf16 (half the bytes)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--backend", backend_name_text, "where to decode: cpu, or cuda (GPU 0)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    const uint64_t budget = parse_byte_size(budget_text, "--budget");
    const DType cache_dtype = cache_dtype_from_name(cache_dtype_name_text);
    const Device device = backend_name_text == "cuda" ? Device::CUDA : Device::CPU;
    if (device == Device::CUDA) {
      T6_CHECK(build_has_cuda() && cuda_device_count() > 0, "--backend cuda: this process sees no GPU");
      cuda_select_device(0);
    }
    const Machine machine = device == Device::CUDA
                                ? Machine{measured_cuda_read_bandwidth(), measured_cuda_gemm_flops(DType::F32)}
                                : Machine{measured_cpu_read_bandwidth(), measured_cpu_sgemm_flops()};
    if (device == Device::CUDA)
      std::printf("machine: GPU 0 (%s), read %.1f GB/s, fp32 GEMM %.1f GFLOP/s (measured now); cache %s\n",
                  cuda_device_info(0).name.c_str(), machine.read_bytes_per_s / 1e9, machine.sgemm_flops / 1e9,
                  cache_dtype_name(cache_dtype));
    else
      std::printf("machine: %d threads, read %.1f GB/s, SGEMM %.1f GFLOP/s (measured now); cache %s\n",
                  omp_get_max_threads(), machine.read_bytes_per_s / 1e9, machine.sgemm_flops / 1e9,
                  cache_dtype_name(cache_dtype));
    std::string result = str("RESULT bench_decode read_GB_s=", machine.read_bytes_per_s / 1e9,
                             " sgemm_GFLOP_s=", machine.sgemm_flops / 1e9);
    std::printf("%-5s %-12s %6s %8s %14s %12s %12s %9s %9s %18s %6s   %s\n", "model", "order", "batch", "context",
                "cache B/token", "cache", "decode tok/s", "cache GB/s", "GFLOP/s", "roofline tok/s", "% roof",
                "buffers besides the cache");
    for (const BenchModel& model : small_models()) {
      if (std::find(model_names.begin(), model_names.end(), model.name) == model_names.end()) continue;
      if (device == Device::CUDA && model.config.latent_attention()) {
        std::printf("%-5s decodes on the CPU only: skipped on cuda\n", model.name.c_str());
        continue;
      }
      ModelWeights host_weights(model.config, 0, 1, 1, false);
      host_weights.initialise(1);
      std::unique_ptr<ModelWeights> device_weights;
      if (device == Device::CUDA) {
        device_weights = std::make_unique<ModelWeights>(model.config, 0, 1, 1, false, Device::CUDA);
        copy_tensor(device_weights->params(), host_weights.params());
      }
      const ModelWeights& weights = device_weights ? *device_weights : host_weights;
      const int64_t per_token = cache_bytes_per_token(model.config, cache_dtype);
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
            if (device == Device::CUDA && order == TpaDecodeOrder::materialised) {
              std::printf("%12s\n", "CPU only");
              continue;
            }
            const DecodeRun run = time_decode(weights, batch, context, steps, order, cache_dtype, machine);
            std::printf("%12.2f %9.2f %9.1f %10.2f %-7s %5.0f%%   %s\n", run.tokens_per_s, run.cache_bytes_per_s / 1e9,
                        run.flops_per_s / 1e9, run.roofline_tokens_per_s, run.bound,
                        100 * run.tokens_per_s / run.roofline_tokens_per_s, run.buffers.c_str());
            std::fflush(stdout);
            const std::string label = order_name == "-" ? model.name : str(model.name, "_", order_name);
            result += str(" ", label, "_tok_s_", batch, "_", context, "=", run.tokens_per_s, " ", label, "_roofline_pct_",
                          batch, "_", context, "=", 100 * run.tokens_per_s / run.roofline_tokens_per_s);
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
