// t6_pretrain: trains a T6 (or baseline) model with TP × DP MPI ranks.
//   mpirun -np 2 build/bin/t6_pretrain --config configs/t6-demo.toml --run-dir runs/demo
// SIGTERM/SIGINT/SIGUSR1 finish the step, save a checkpoint and exit 0; --resume continues from it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "apps/tool_main.h"
#include "checkpoint/checkpoint_store.h"
#include "core/log.h"
#include "core/cpu_threads.h"
#include "parallel/mpi_runtime.h"
#include "parallel/rank_failure.h"
#include "train/config_report.h"
#include "train/run_config.h"
#include "parallel/cuda_training_status.h"
#include "run/trainer.h"
#include "run/training_plan.h"

namespace {

// CPU threads for this rank: parallel.threads, or the node's cores shared among its ranks, so two
// ranks on two cores do not oversubscribe them (OpenMP and OpenBLAS both follow this).
void set_cpu_threads(int64_t configured) {
  int64_t threads = configured;
  if (threads == 0) {
    const int64_t ranks_on_node = t6::node_placement().ranks_on_node;
    threads = std::max<int64_t>(1, t6::available_cores() / ranks_on_node);
  }
  t6::use_cpu_threads(threads, "parallel.threads");
}

// The run config of RUN_DIR's newest checkpoint (the one --resume continues from), with --set
// overrides on top. Its manifest only: resume itself verifies the checkpoint's files.
t6::RunConfig checkpoint_run_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const t6::checkpoint::ResumePoint point = t6::checkpoint::resolve_latest(std::filesystem::path(run_dir) / "checkpoints",
                                                                           t6::checkpoint::ChecksumCheck::skip);
  t6::log_info("no --config: using the config saved in ", point.dir.string());
  return t6::load_saved_run_config(point.manifest.config, "checkpoint " + point.dir.string(), overrides);
}

}  // namespace

int main(int argc, char** argv) {
  t6::use_passive_openmp_wait(argv);  // before MPI starts: it may execute the tool again
  return t6::run_mpi_tool(argc, argv, "t6_pretrain", [](int argc, char** argv) {
    CLI::App app{t6::str("Pretrain a T6 language model (tensor and data parallel over MPI ranks). Note: ",
                         t6::cuda_training_status(), ".")};
    std::string config_path, run_dir = "runs/default";
    std::vector<std::string> overrides;
    CLI::Option* config_option =
        app.add_option("--config", config_path, "TOML run config (configs/*.toml)")->check(CLI::ExistingFile);
    app.add_option("--set", overrides, "override a config key: --set train.lr=3e-4 (repeatable)");
    app.add_option("--run-dir", run_dir, "where metrics.jsonl and checkpoints/ go (default: runs/default)");
    bool plan = false;
    app.add_flag("--plan", plan,
                 "print the run's plan and exit: parameters and layout, micro-batches, memory per rank (CPU exact, "
                 "CUDA estimated, against an H100 80 GB), FLOPs per token and communication per step; reads no corpus "
                 "and starts no training");
    int64_t plan_world = 0;
    app.add_option("--world", plan_world, "with --plan: the number of MPI ranks to plan for (default: this launch's)")
        ->check(CLI::PositiveNumber);
    bool resume = false;
    app.add_flag("--resume", resume,
                 "continue from RUN_DIR/checkpoints/latest (an error if there is none), with the config saved in it unless "
                 "--config is given; checkpoint.resume = "
                 "\"auto\" does the same but starts afresh when there is no checkpoint");
    bool print_config = false, print_config_doc = false;
    app.add_flag("--print-config", print_config,
                 "print the resolved config (defaults, file, --set) as TOML, each value with its source, and exit");
    app.add_flag("--print-config-doc", print_config_doc,
                 "print the reference of every config key (docs/CONFIG.md) and exit")
        ->excludes(config_option);
    std::vector<std::string> allowed_changes;
    app.add_option("--allow-change", allowed_changes,
                   "resume although these keys differ from the checkpoint's: train.seed, train.global_batch_size, "
                   "train.seq_len, data.corpus (otherwise an error)");
    // Every rank sees the same command line, so a bad flag is found by all of them: rank 0 alone
    // prints it, once, and every rank returns (nothing to abort).
    const bool report = t6::world_rank() == 0;
    if (const auto exit_code = t6::parse_command_line(app, "t6_pretrain", argc, argv, report)) return *exit_code;
    if (!print_config_doc && config_path.empty() && !resume) {
      if (report)
        std::fprintf(stderr, "t6_pretrain: error: --config is required (or --resume, which takes the checkpoint's, "
                             "or --print-config-doc)\n");
      return 1;
    }
    if (run_dir.empty()) {
      if (report) std::fprintf(stderr, "t6_pretrain: error: --run-dir is empty: give the run's directory\n");
      return 1;
    }
    if (plan_world != 0 && !plan) {
      if (report) std::fprintf(stderr, "t6_pretrain: error: --world is for --plan (a launch's world is its MPI size)\n");
      return 1;
    }
    // --resume without --config continues with the config the checkpoint was saved with.
    const auto load_config = [&] {
      return config_path.empty() ? checkpoint_run_config(run_dir, overrides) : t6::load_run_config(config_path, overrides);
    };
    if (plan) {
      const t6::RunConfig config = load_config();
      const int64_t world = plan_world != 0 ? plan_world : t6::world_size();
      std::string text;
      try {
        text = t6::training_plan_report(config, world);
      } catch (const t6::Error& error) {
        throw t6::Error(config.with_sources(error.what()));
      }
      if (report) std::fputs(text.c_str(), stdout);
      return 0;
    }
    if (print_config_doc || print_config) {
      const std::string text = print_config_doc ? t6::config_reference_markdown() : t6::resolved_config_toml(load_config());
      if (t6::world_rank() == 0) std::fputs(text.c_str(), stdout);
      return 0;
    }
    const t6::RunConfig config = load_config();
    set_cpu_threads(config.parallel.threads);
    t6::ProcessGrid grid = t6::make_mpi_process_grid(config.parallel.tp);
    t6::install_stop_signal_handlers();
    std::optional<t6::Trainer> trainer;
    try {
      trainer.emplace(config, grid, run_dir, resume ? t6::ResumeMode::latest : t6::ResumeMode::from_config,
                      allowed_changes);
    } catch (const t6::RankError& error) {
      // As below, keeping the rank that failed.
      if (error.detail().rfind("cannot resume: ", 0) == 0) throw;
      throw t6::RankError(error.rank(), error.world_size(), config.with_sources(error.detail()));
    } catch (const t6::Error& error) {
      // A value that does not fit the world or the data: say where it was set. A checkpoint that
      // cannot be resumed is named by its own values (a damaged manifest), which no config set.
      const std::string message = error.what();
      if (message.rfind("cannot resume: ", 0) == 0) throw;
      throw t6::Error(config.with_sources(message));
    }
    trainer->run();
    return 0;
  });
}
