// t6_pretrain: trains a T6 (or baseline) model with TP × DP MPI ranks.
//   mpirun -np 2 build/bin/t6_pretrain --config configs/t6-demo.toml --run-dir runs/demo
// SIGTERM/SIGINT/SIGUSR1 finish the step, save a checkpoint and exit 0; --resume continues from it.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <thread>

#include <cblas.h>

#include "parallel/mpi_runtime.h"
#include "train/run_config.h"
#include "run/trainer.h"

namespace {

// CPU threads for this rank: parallel.threads, or the node's cores shared among its ranks, so two
// ranks on two cores do not oversubscribe them (OpenMP and OpenBLAS both follow this).
void set_cpu_threads(int64_t configured) {
  int64_t threads = configured;
  if (threads == 0) {
    const int64_t ranks_on_node = t6::node_placement().ranks_on_node;
    threads = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()) / ranks_on_node);
  }
  omp_set_num_threads(int(threads));
  openblas_set_num_threads(int(threads));
}

}  // namespace

int main(int argc, char** argv) {
  return t6::run_mpi_tool(argc, argv, "t6_pretrain", [](int argc, char** argv) {
    CLI::App app{"Pretrain a T6 language model (tensor and data parallel over MPI ranks)"};
    std::string config_path, run_dir = "runs/default";
    std::vector<std::string> overrides;
    app.add_option("--config", config_path, "TOML run config (configs/*.toml)")->required()->check(CLI::ExistingFile);
    app.add_option("--set", overrides, "override a config key: --set train.lr=3e-4 (repeatable)");
    app.add_option("--run-dir", run_dir, "where metrics.jsonl and checkpoints/ go");
    bool resume = false;
    app.add_flag("--resume", resume,
                 "continue from RUN_DIR/checkpoints/latest (an error if there is none); checkpoint.resume = "
                 "\"auto\" does the same but starts afresh when there is no checkpoint");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
      return app.exit(error);
    }
    const t6::RunConfig config = t6::load_run_config(config_path, overrides);
    set_cpu_threads(config.parallel.threads);
    t6::ProcessGrid grid = t6::make_mpi_process_grid(int(config.parallel.tp));
    t6::install_stop_signal_handlers();
    t6::Trainer trainer(config, grid, run_dir, resume ? t6::ResumeMode::latest : t6::ResumeMode::from_config);
    trainer.run();
    return 0;
  });
}
