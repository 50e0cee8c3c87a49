// Training-step throughput of t6's CPU backend (fp32): forward + backward + clip + AdamW on random
// tokens, in one process. With PyTorch installed it then runs the official reference model's CPU
// benchmark (bench_reference_cpu.py beside the project, or $T6_REFERENCE_BENCH) on the same config
// in the same run, so both figures come from the same machine and moment.
//   bench_train_step [n_layer=4 n_embd=256 n_head=8 head_dim=64 q_rank=6 rank=2 vocab_size=50304
//                     batch=8 seq=256 steps=5 threads=2 kind=T6]
//   bench_train_step config=configs/t6-demo.toml [steps=5 threads=2]   (model, micro-batch, seq_len of a run config)
// Last line: RESULT bench_train_step kind=... params_m=... t6_ms=... t6_tok_s=... t6_gflop_s=...
//            [reference_tok_s=... ratio=...]
#include <omp.h>

#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <cstring>
#include <random>
#include <string>

#include "core/build_paths.h"
#include "core/error.h"
#include "model/language_model.h"
#include "train/adamw.h"
#include "train/grad_norm.h"
#include "train/run_config.h"

using namespace t6;

namespace {

std::map<std::string, std::string> parse_arguments(int argc, char** argv) {
  std::map<std::string, std::string> arguments = {
      {"n_layer", "4"}, {"n_embd", "256"}, {"n_head", "8"}, {"head_dim", "64"}, {"q_rank", "6"}, {"rank", "2"},
      {"group_size", "1"}, {"vocab_size", "50304"}, {"batch", "8"}, {"seq", "256"}, {"steps", "5"}, {"threads", "2"},
      {"kind", "T6"}, {"config", ""}};
  for (int i = 1; i < argc; ++i) {
    const std::string text = argv[i];
    const size_t equals = text.find('=');
    T6_CHECK(equals != std::string::npos && arguments.count(text.substr(0, equals)), "unknown argument '", text, "'");
    arguments[text.substr(0, equals)] = text.substr(equals + 1);
  }
  return arguments;
}

// tokens/s of the reference, parsed from its output, or a negative value when it cannot run.
double run_reference(const std::map<std::string, std::string>& arguments) {
  const char* configured = std::getenv("T6_REFERENCE_BENCH");
  const std::filesystem::path script =
      configured ? configured : build_source_dir() / "../shared/anchors/bench_reference_cpu.py";
  if (!std::filesystem::exists(script)) return -1;
  // Debian's python3-torch lives under /usr/bin/python3, which a pyenv or venv python3 may hide.
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (std::system((std::string(candidate) + " -c 'import torch' 2>/dev/null").c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) return -1;
  std::string command = python + " " + script.string();
  for (const char* key : {"n_layer", "n_embd", "n_head", "head_dim", "q_rank", "rank", "vocab_size", "batch", "seq", "steps", "threads", "kind"})
    command += str(" ", key, "=", arguments.at(key));
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
  auto arguments = parse_arguments(argc, argv);
  if (!arguments.at("config").empty()) {
    // Take the model and the per-rank micro-batch from a run config, in the reference's key names.
    const RunConfig run = load_run_config(arguments.at("config"));
    const ModelConfig& m = run.model;
    for (const auto& [key, value] : std::map<std::string, int64_t>{
             {"n_layer", m.n_layer}, {"n_embd", m.n_embd}, {"n_head", m.n_head}, {"head_dim", m.head_dim},
             {"q_rank", m.q_rank}, {"rank", m.rank}, {"group_size", m.group_size}, {"vocab_size", m.vocab_size},
             {"batch", run.train.micro_batch_size}, {"seq", run.train.seq_len}})
      arguments[key] = std::to_string(value);
    arguments["kind"] = model_kind_name(m.kind);
  }
  auto integer = [&](const char* key) { return std::stoll(arguments.at(key)); };
  ModelConfig config;
  config.kind = model_kind_from_name(arguments.at("kind"));
  config.n_layer = integer("n_layer");
  config.n_embd = integer("n_embd");
  config.n_head = integer("n_head");
  config.head_dim = config.kind == ModelKind::llama_mha ? config.n_embd / config.n_head : integer("head_dim");
  config.q_rank = integer("q_rank");
  config.rank = integer("rank");
  config.group_size = integer("group_size");
  config.vocab_size = integer("vocab_size");
  const int64_t batch = integer("batch"), seq = integer("seq"), steps = integer("steps");
  omp_set_num_threads(int(integer("threads")));
  openblas_set_num_threads(int(integer("threads")));

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
              arguments.at("kind").c_str(), double(config.parameter_count()) / 1e6, (long long)batch, (long long)seq,
              seconds * 1e3, tokens_per_s, gflop_s);
  const double reference = run_reference(arguments);
  std::printf("RESULT bench_train_step kind=%s params_m=%.2f t6_ms=%.1f t6_tok_s=%.0f t6_gflop_s=%.1f",
              arguments.at("kind").c_str(), double(config.parameter_count()) / 1e6, seconds * 1e3, tokens_per_s, gflop_s);
  if (reference > 0) std::printf(" reference_tok_s=%.0f ratio=%.2f", reference, tokens_per_s / reference);
  std::printf("\n");
  return 0;
} catch (const std::exception& error) {
  std::fprintf(stderr, "bench_train_step: error: %s\n", error.what());
  return 1;
}
