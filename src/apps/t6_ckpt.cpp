// t6_ckpt: offline work on training checkpoints (DESIGN.md "Checkpoints").
//   t6_ckpt inspect runs/demo/checkpoints             step, layout and tensor table of `latest`
//   t6_ckpt verify runs/demo/checkpoints/step_00000100
//   t6_ckpt reshard runs/demo/checkpoints runs/tp4/checkpoints --tp 4 --dp 2 --zero1
//   t6_ckpt export runs/demo/checkpoints model.safetensors --dtype bf16
//   t6_ckpt import model.safetensors runs/finetune/checkpoints --config configs/t6-demo.toml
// A checkpoint argument is a step directory or a checkpoints directory (then its `latest`).
// Errors print one line, "t6_ckpt: error: ...", and exit 1.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <limits>

#include "checkpoint/checkpoint_verify.h"
#include "train_state/model_export.h"
#include "train_state/reshard.h"
#include "train_state/train_checkpoint.h"
#include "apps/tool_main.h"
#include "core/error.h"
#include "core/progress_bar.h"

namespace {

using namespace t6;
using namespace t6::checkpoint;

std::string layout_text(const CheckpointLayout& layout) {
  return str("TP ", layout.tp, " × DP ", layout.dp, layout.zero1 ? " (ZeRO-1)" : "");
}

void inspect(const std::string& path) {
  const ResumePoint point = open_checkpoint_path(path, ChecksumCheck::skip);
  const Manifest& manifest = point.manifest;
  std::printf("checkpoint  %s\nstep        %lld\ntokens      %lld\nlayout      %s, %zu shard files\n",
              point.dir.string().c_str(), (long long)manifest.step, (long long)manifest.tokens_seen,
              layout_text(manifest.layout).c_str(), manifest.shards.size());
  // The model and the run it was trained with, before the 100-odd tensor lines.
  const ModelConfig model = model_config_of(manifest, point.dir);
  std::printf("model       %s, %lld parameters\n", model.describe().c_str(), (long long)model.parameter_count());
  const auto& train = manifest.config.value("train", nlohmann::json::object());
  if (!train.empty()) std::printf("train       %s\n", train.dump().c_str());
  std::printf("\n%-56s %-16s %-5s %14s\n", "tensor", "shape", "dtype", "bytes");
  uint64_t total = 0;
  for (const TensorInfo& tensor : manifest.tensors) {
    const uint64_t bytes = uint64_t(extents_numel(tensor.shape)) * dtype_size(tensor.dtype);
    total += bytes;
    std::printf("%-56s %-16s %-5s %14llu\n", tensor.name.c_str(), extents_to_string(tensor.shape).c_str(),
                dtype_name(tensor.dtype), (unsigned long long)bytes);
  }
  std::printf("%zu tensors, %llu bytes\n", manifest.tensors.size(), (unsigned long long)total);
}

int verify(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::exists(std::filesystem::path(path) / "manifest.json")
                                        ? std::filesystem::path(path)
                                        : open_checkpoint_path(path, ChecksumCheck::skip).dir;
  const std::vector<CheckpointProblem> problems = verify_checkpoint(dir);
  for (const CheckpointProblem& problem : problems)
    std::fprintf(stderr, "t6_ckpt: error: %s\n", problem.to_string().c_str());
  if (!problems.empty()) return 1;
  // Whole files can still hold a training state or model config that resume refuses.
  check_training_checkpoint({dir, read_manifest(dir / "manifest.json"), {}});
  std::printf("%s: complete, every checksum matches\n", dir.string().c_str());
  return 0;
}

void reshard(const std::string& source_path, const std::string& destination, const CheckpointLayout& layout) {
  const ResumePoint source = open_checkpoint_path(source_path, ChecksumCheck::verify);
  uint64_t source_bytes = 0;
  for (const ShardRecord& shard : source.manifest.shards) source_bytes += shard.bytes;
  ProgressBar bar(stderr, source_bytes, isatty(fileno(stderr)) != 0);
  const auto dir = reshard_checkpoint(source, destination, layout, [&](int64_t done, int64_t total) {
    bar.update(source_bytes * uint64_t(done) / uint64_t(total), 0);
  });
  bar.finish();
  std::printf("%s: step %lld at %s\n", dir.string().c_str(), (long long)source.manifest.step,
              layout_text(read_manifest(dir / "manifest.json").layout).c_str());
}

int run(int argc, char** argv) {
  CLI::App app{"Inspect, verify, reshard, export and import t6 training checkpoints.\n"
               "CHECKPOINT is a step directory (step_NNNNNNNN) or a checkpoints directory, meaning its `latest`."};
  app.require_subcommand(1);
  std::string source, destination, dtype = "f32", config_path;
  CheckpointLayout layout;

  CLI::App* inspect_command = app.add_subcommand("inspect", "print step, tokens, layout and the tensor table");
  inspect_command->add_option("CHECKPOINT", source)->required();
  CLI::App* verify_command =
      app.add_subcommand("verify", "check completeness, every checksum, the training state and the model config; exit 1 "
                                   "naming each damaged file and dataset");
  verify_command->add_option("CHECKPOINT", source)->required();
  CLI::App* reshard_command = app.add_subcommand(
      "reshard", "rewrite a checkpoint for another TP × DP layout, offline in one process. DST is a checkpoints "
                 "directory (new or existing, without this step): the result is DST/step_NNNNNNNN and DST/latest, so "
                 "`t6_pretrain --run-dir R --resume` loads it when DST is R/checkpoints");
  reshard_command->add_option("CHECKPOINT", source)->required();
  reshard_command->add_option("DST", destination)->required();
  // Read as 64-bit so that a huge value gets the range message instead of "could not convert".
  const CLI::Range layout_size(int64_t(1), int64_t(std::numeric_limits<int>::max()));
  int64_t tp = 1, dp = 1;
  reshard_command->add_option("--tp", tp, "tensor-parallel size")->required()->check(layout_size);
  reshard_command->add_option("--dp", dp, "data-parallel size")->required()->check(layout_size);
  reshard_command->add_flag("--zero1", layout.zero1, "shard the AdamW state over DP (ZeRO-1)");
  CLI::App* export_command =
      app.add_subcommand("export", "write the weights as a safetensors state dict under the reference names");
  export_command->add_option("CHECKPOINT", source)->required();
  export_command->add_option("OUT", destination, "OUT.safetensors")->required();
  export_command->add_option("--dtype", dtype, "f32 or bf16 (default: f32)")->check(CLI::IsMember({"f32", "bf16"}));
  CLI::App* import_command = app.add_subcommand(
      "import", "make a step-0 checkpoint (TP1 × DP1, fresh AdamW state) from a safetensors state dict or a fixture "
                "file; DST is a checkpoints directory as for reshard");
  import_command->add_option("IN", source, "IN.safetensors")->required()->check(CLI::ExistingFile);
  import_command->add_option("DST", destination)->required();
  import_command->add_option("--config", config_path, "run config TOML; its model must match the file's metadata")
      ->check(CLI::ExistingFile);
  if (const auto exit_code = parse_command_line(app, "t6_ckpt", argc, argv)) return *exit_code;

  if (*inspect_command) inspect(source);
  if (*verify_command) return verify(source);
  if (*reshard_command) {
    layout.tp = int(tp);
    layout.dp = int(dp);
    reshard(source, destination, layout);
  }
  if (*export_command) {
    const ResumePoint point = open_checkpoint_path(source, ChecksumCheck::verify);
    export_safetensors(point, destination, dtype == "bf16" ? DType::BF16 : DType::F32);
    std::printf("%s: %s weights of step %lld (%s, %llu bytes)\n", destination.c_str(), dtype.c_str(),
                (long long)point.manifest.step, model_config_of(point.manifest, point.dir).describe().c_str(),
                (unsigned long long)std::filesystem::file_size(destination));
  }
  if (*import_command) {
    const RunConfig run_config = config_path.empty() ? RunConfig{} : load_run_config(config_path);
    const auto dir = import_safetensors(source, destination, config_path.empty() ? nullptr : &run_config);
    std::printf("%s: step 0 at TP 1 × DP 1\n", dir.string().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return t6::run_tool("t6_ckpt", argc, argv, run); }
