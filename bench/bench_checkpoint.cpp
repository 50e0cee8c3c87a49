// Checkpoint save and load throughput for a t6-small model (weights + AdamW m, v in fp32) through
// the trainer's own save protocol (TrainCheckpointer: every rank writes its part, rank 0 commits),
// next to `cp` + `sync` of the same shard files on the same disk. Run it with as many processes as
// DP replicas to measure the save spread over them:
//   mpirun -np 2 build/bin/bench_checkpoint [--config configs/t6-small.toml] [--scratch DIR]
// Save and cp both end durable (fsync). The save writes with O_DIRECT where the filesystem allows,
// so load reads from the disk; cp reads its source from the page cache.
// Prints one line: RESULT bench_checkpoint save_gb_s=... load_gb_s=... cp_gb_s=... save_vs_cp=... ranks=...
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/mpi_c.h"
#include "model/model_weights.h"
#include "parallel/mpi_runtime.h"
#include "train/run_config.h"
#include "train_state/train_checkpointer.h"

using namespace t6;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double bytes_under(const fs::path& dir) {
  double bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) bytes += double(entry.file_size());
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  return run_mpi_tool(argc, argv, "bench_checkpoint", [](int argc, char** argv) {
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
    const RunConfig config = load_run_config(config_path);
    const fs::path scratch = fs::absolute(scratch_path);
    ProcessGrid grid = make_mpi_process_grid(1);  // every rank a DP replica
    if (grid.world_rank() == 0) fs::remove_all(scratch);
    grid.world().barrier();
    ModelWeights weights(config.model, 0, 1);
    weights.initialise(1);
    const int64_t numel = weights.table().local_numel();
    HostBuffer first(size_t(numel) * 4), second(size_t(numel) * 4);
    const OptimizerShard optimizer{first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel};
    TrainCheckpointer checkpointer(scratch / "checkpoints", 0, grid);

    grid.world().barrier();
    auto start = std::chrono::steady_clock::now();
    const fs::path dir = checkpointer.save({1, 0, {1, grid.dp_size(), false}, config.to_json(),
                                            to_json(TrainState{1, 1, 1, 0, "", ""}), train_checkpoint_tensors(config.model)},
                                           weights, optimizer, false);
    const double save_seconds = seconds_since(start);

    grid.world().barrier();
    start = std::chrono::steady_clock::now();
    checkpoint::CheckpointReader reader(dir, checkpoint::read_manifest(dir / "manifest.json"));
    read_rank_tensors(reader, weights, optimizer);
    grid.world().barrier();
    const double load_seconds = seconds_since(start);

    if (grid.world_rank() == 0) {
      const double file_bytes = bytes_under(dir);
      // cp reads its source from the page cache, as it would right after a buffered save; the
      // save's direct writes left none of it there.
      T6_CHECK(std::system(str("cat ", dir.string(), "/* > /dev/null").c_str()) == 0, "reading ", dir.string(), " failed");
      start = std::chrono::steady_clock::now();
      T6_CHECK(std::system(str("cp -r ", dir.string(), " ", (scratch / "copy").string(), " && sync ",
                               (scratch / "copy").string(), "/*").c_str()) == 0, "cp failed");
      const double cp_seconds = seconds_since(start);
      std::printf("RESULT bench_checkpoint save_gb_s=%.3f load_gb_s=%.3f cp_gb_s=%.3f save_vs_cp=%.2f bytes=%.0f "
                  "params=%lld ranks=%d\n",
                  file_bytes / save_seconds / 1e9, file_bytes / load_seconds / 1e9, file_bytes / cp_seconds / 1e9,
                  cp_seconds / save_seconds, file_bytes, (long long)numel, grid.world_size());
      fs::remove_all(scratch);
    }
    return 0;
  });
}
