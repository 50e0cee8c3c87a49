// Training-step throughput of t6's CPU backend (fp32): forward + backward + clip + AdamW on random
// tokens, in one process. With --reference DIR (a clone of github.com/tensorgi/T6) and PyTorch
// installed it then times the official model's step on the same config (bench/reference_train_step.py
// imports it from DIR) in the same run, so both figures come from the same machine and moment.
//   bench_train_step [--kind T6 --n-layer 4 --n-embd 256 --n-head 8 --head-dim 64 --q-rank 6 --rank 2
//                     --vocab-size 50304 --batch 8 --seq 256] [--steps 5 --threads 2]
//                    llama_gqa: --group-size; llama_mla: --qk-rope-head-dim --q-lora-rank --kv-lora-rank --v-head-dim
//   bench_train_step --config configs/t6-demo.toml [--steps 5 --threads 2]   (model, micro-batch, seq_len of a run config)
//   ... --reference ~/src/T6                                                  (also the official model, side by side)
// Last line: RESULT bench_train_step kind=... params_m=... t6_ms=... t6_tok_s=... t6_gflop_s=...
//            [reference_tok_s=... ratio=...]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <random>
#include <string>

#include "core/build_paths.h"
#include "core/cpu_threads.h"
#include "core/error.h"
#include "model/language_model.h"
#include "train/adamw.h"
#include "train/grad_norm.h"
#include "train/batch_split.h"
#include "train/run_config.h"

using namespace t6;

namespace {

// What to measure: a model and micro-batch shape, how many steps, on how many threads.
struct BenchShape {
  ModelConfig model{ModelKind::T6, 4, 256, 8, 64, 6, 2, 1, 50304};
  int64_t batch = 8, seq = 256, steps = 5, threads = 2;
};

// tokens/s of the official model's step (bench/reference_train_step.py importing it from
// `reference_dir`, a clone of github.com/tensorgi/T6), parsed from its output; negative when there is
// no reference to run (none given, or no PyTorch).
double run_reference(const BenchShape& shape, const std::filesystem::path& reference_dir) {
  if (reference_dir.empty()) return -1;
  T6_CHECK(std::filesystem::is_directory(reference_dir / "model"), "--reference ", reference_dir.string(),
           ": no model/ directory (give a clone of https://github.com/tensorgi/T6)");
  const std::filesystem::path script = build_source_dir() / "bench" / "reference_train_step.py";
  // Debian's python3-torch lives under /usr/bin/python3, which a pyenv or venv python3 may hide.
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (std::system((std::string(candidate) + " -c 'import torch' 2>/dev/null").c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) {
    std::printf("reference: skipped, no python3 with torch (Debian: apt-get install python3-torch)\n");
    return -1;
  }
  // The reference script's own key=value arguments, with the keys of the kind's GPTConfig.
  const ModelConfig& m = shape.model;
  std::string kind_keys;
  if (m.kind == ModelKind::llama_gqa) kind_keys = str(" group_size=", m.group_size);
  if (m.latent_attention())
    kind_keys = str(" qk_rope_head_dim=", m.qk_rope_head_dim, " q_lora_rank=", m.q_lora_rank, " kv_lora_rank=", m.kv_lora_rank,
                    " v_head_dim=", m.v_head_dim);
  const std::string command = str(python, " ", script.string(), " ", reference_dir.string(), " n_layer=", m.n_layer, " n_embd=", m.n_embd, " n_head=", m.n_head,
                                  " head_dim=", m.head_dim, " q_rank=", m.q_rank, " rank=", m.rank, kind_keys,
                                  " vocab_size=", m.vocab_size, " batch=", shape.batch, " seq=", shape.seq,
                                  " steps=", shape.steps, " threads=", shape.threads, " kind=", model_kind_name(m.kind));
  std::printf("reference: %s\n", command.c_str());
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char line[4096];
  double tokens_per_s = -1;
  while (std::fgets(line, sizeof line, pipe)) {
    std::fputs(line, stdout);
    // The reference's last line ends "..., <ms> ms/step, <tokens> tokens/s".
    const std::string text = line;
    const size_t unit = text.rfind(" tokens/s"), before = text.rfind(", ", unit);
    if (unit != std::string::npos && before != std::string::npos) tokens_per_s = std::atof(text.c_str() + before + 2);
  }
  pclose(pipe);
  return tokens_per_s;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Training-step throughput of the CPU backend, next to the PyTorch reference when it is installed"};
  BenchShape shape;
  ModelConfig& m = shape.model;
  std::string kind = model_kind_name(m.kind), config_path;
  CLI::Option* config_option =
      app.add_option("--config", config_path, "take the model, micro-batch and seq_len from this run config")
          ->check(CLI::ExistingFile);
  const std::vector<CLI::Option*> shape_options = {
      app.add_option("--kind", kind, "model kind")->capture_default_str(),
      app.add_option("--n-layer", m.n_layer, "transformer blocks")->capture_default_str(),
      app.add_option("--n-embd", m.n_embd, "model width")->capture_default_str(),
      app.add_option("--n-head", m.n_head, "attention heads")->capture_default_str(),
      app.add_option("--head-dim", m.head_dim, "head dimension (llama_mha: n_embd / n_head)")->capture_default_str(),
      app.add_option("--q-rank", m.q_rank, "query rank (T6)")->capture_default_str(),
      app.add_option("--rank", m.rank, "K and V rank (T6, T6_kvonly)")->capture_default_str(),
      app.add_option("--group-size", m.group_size, "query heads per KV head (llama_gqa)")->capture_default_str(),
      app.add_option("--qk-rope-head-dim", m.qk_rope_head_dim, "rotated query/key part (llama_mla)")->capture_default_str(),
      app.add_option("--q-lora-rank", m.q_lora_rank, "query latent width (llama_mla)")->capture_default_str(),
      app.add_option("--kv-lora-rank", m.kv_lora_rank, "key/value latent width (llama_mla)")->capture_default_str(),
      app.add_option("--v-head-dim", m.v_head_dim, "value head width (llama_mla)")->capture_default_str(),
      app.add_option("--vocab-size", m.vocab_size, "vocabulary rows")->capture_default_str(),
      app.add_option("--batch", shape.batch, "sequences per step")->capture_default_str(),
      app.add_option("--seq", shape.seq, "tokens per sequence")->capture_default_str(),
  };
  for (CLI::Option* option : shape_options) option->excludes(config_option);
  app.add_option("--steps", shape.steps, "timed steps (after one warm-up step)")->capture_default_str()->check(CLI::PositiveNumber);
  std::filesystem::path reference_dir;
  app.add_option("--reference", reference_dir,
                 "a clone of https://github.com/tensorgi/T6: also time its model's step (needs python3-torch)");
  app.add_option("--threads", shape.threads, "OpenMP and OpenBLAS threads")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), max_cpu_threads()));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  if (!config_path.empty()) {
    const RunConfig run = load_run_config(config_path);
    m = run.model;
    shape.batch = batch_share(run.train, 0, 1).micro_batch;  // one rank's micro-batch, derived when unset
    shape.seq = run.train.seq_len;
  } else {
    m.kind = model_kind_from_name(kind);
    if (m.kind == ModelKind::llama_mha) m.head_dim = m.n_embd / m.n_head;
    m.validate();
  }
  const ModelConfig& config = m;
  const int64_t batch = shape.batch, seq = shape.seq, steps = shape.steps;
  use_cpu_threads(shape.threads, "--threads");

  LanguageModel model(config, batch, seq);
  model.weights().initialise(0);
  AdamW optimizer(model.weights().table().local_numel(), AdamWSettings{});
  std::mt19937_64 generator(0);
  std::uniform_int_distribution<int32_t> token(0, int32_t(config.vocab_size - 1));
  std::vector<int32_t> inputs(size_t(batch * seq)), targets(size_t(batch * seq));
  for (size_t i = 0; i < inputs.size(); ++i) inputs[i] = token(generator), targets[i] = token(generator);
  const Tensor input_tensor(inputs.data(), {batch, seq}, DType::I32), target_tensor(targets.data(), {batch, seq}, DType::I32);

  auto step = [&] {
    model.weights().zero_grads();
    model.forward_backward(input_tensor, target_tensor, 1.0f);
    const double norm = global_grad_norm(model.weights(), model.weights().grads(), nullptr);
    optimizer.step(model.weights().params(), model.weights().grads(), 6e-4f, clip_scale(norm, 1.0));
  };
  step();  // warm-up: first-touch of buffers, BLAS thread start
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / double(steps);
  const double tokens_per_s = double(batch * seq) / seconds;
  // The spec's cost model (6N + 12·L·H·D·T per token), comparable with the machine's GEMM peak.
  const double gflop_s = config.training_flops_per_token(seq) * tokens_per_s / 1e9;
  std::printf("t6 CPU fp32: %s %.1fM params, batch %lld x %lld: %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s\n",
              model_kind_name(config.kind), double(config.parameter_count()) / 1e6, (long long)batch, (long long)seq,
              seconds * 1e3, tokens_per_s, gflop_s);
  const double reference = run_reference(shape, reference_dir);
  std::printf("RESULT bench_train_step kind=%s params_m=%.2f t6_ms=%.1f t6_tok_s=%.0f t6_gflop_s=%.1f",
              model_kind_name(config.kind), double(config.parameter_count()) / 1e6, seconds * 1e3, tokens_per_s, gflop_s);
  if (reference > 0) std::printf(" reference_tok_s=%.0f ratio=%.2f", reference, tokens_per_s / reference);
  std::printf("\n");
  return 0;
} catch (const std::exception& error) {
  std::fprintf(stderr, "bench_train_step: error: %s\n", error.what());
  return 1;
}
