// Checkpoint save and load throughput for a t6-small model (weights + AdamW m, v in fp32) in one
// process, next to `cp` + `sync` of the same shard file on the same disk. Save and cp both end
// durable (fsync); load and cp read a file just written, so both read from the page cache.
//   build/bin/bench_checkpoint [--config configs/t6-small.toml] [--scratch DIR]
// Prints one line: RESULT bench_checkpoint save_gb_s=... load_gb_s=... cp_gb_s=... bytes=...
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_store.h"
#include "core/error.h"
#include "train/run_config.h"
#include "train_state/train_checkpoint.h"

using namespace t6;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checkpoint save and load throughput of a model's weights and AdamW state, next to cp + sync"};
  std::string config_path = "configs/t6-small.toml", scratch_path = "bench_checkpoint_scratch";
  app.add_option("--config", config_path, "run config whose model is saved")->capture_default_str()->check(CLI::ExistingFile);
  app.add_option("--scratch", scratch_path, "directory for the checkpoint and the copy (removed before and after)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    const RunConfig config = load_run_config(config_path);
    const fs::path scratch = fs::path(scratch_path);
    fs::remove_all(scratch);
    ModelWeights weights(config.model, 0, 1);
    weights.initialise(1);
    const int64_t numel = weights.table().local_numel();
    HostBuffer first(size_t(numel) * 4), second(size_t(numel) * 4);
    const OptimizerShard optimizer{first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel};
    const double bytes = double(numel) * 4 * 3;

    auto start = std::chrono::steady_clock::now();
    checkpoint::CheckpointStore store(scratch / "checkpoints", 0, checkpoint::make_save_nonce());
    store.begin_save(1);
    checkpoint::ShardFileWriter writer(store.staging_dir(1) / shard_file_name(0, 0));
    write_rank_tensors(writer, weights, optimizer);
    writer.finish();
    const fs::path dir = store.commit_save({1, 0, {1, 1, false}, config.to_json(), to_json(TrainState{1, 1, 1, 0}),
                                            train_checkpoint_tensors(config.model)});
    const double save_seconds = seconds_since(start);

    start = std::chrono::steady_clock::now();
    checkpoint::CheckpointReader reader(dir, checkpoint::read_manifest(dir / "manifest.json"));
    read_rank_tensors(reader, weights, optimizer);
    const double load_seconds = seconds_since(start);

    const fs::path shard = dir / shard_file_name(0, 0);
    start = std::chrono::steady_clock::now();
    T6_CHECK(std::system(str("cp ", shard.string(), " ", (scratch / "copy.h5").string(), " && sync ",
                             (scratch / "copy.h5").string()).c_str()) == 0, "cp failed");
    const double cp_seconds = seconds_since(start);
    const double file_bytes = double(fs::file_size(shard));
    std::printf("RESULT bench_checkpoint save_gb_s=%.3f load_gb_s=%.3f cp_gb_s=%.3f bytes=%.0f params=%lld\n",
                bytes / save_seconds / 1e9, bytes / load_seconds / 1e9, file_bytes / cp_seconds / 1e9, bytes,
                (long long)numel);
    fs::remove_all(scratch);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_checkpoint: error: %s\n", error.what());
    return 1;
  }
}
