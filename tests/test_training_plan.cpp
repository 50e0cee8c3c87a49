// ctest-timeout: 300
// t6_pretrain --plan, the dry run of a launch: every shipped paper config plans at 1, 8, 16, 32 and 64
// ranks with TP 1, 2 and 4 (the batch always splits, the micro-batch is derived), the launch/
// examples plan as written, and the CPU memory the plan prints is the start-up table's memory
// line of real runs at several layouts (TP, DP, ZeRO-1, an uneven batch split, derived micro-batches).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/command.h"
#include "common/test_paths.h"
#include "run/training_plan.h"
#include "train/batch_split.h"

using namespace t6;
using namespace t6::testing;

namespace {

// Every configs/*.toml but the demo's (16 sequences per step, sized for 2 ranks on 2 CPU cores).
std::vector<std::filesystem::path> paper_configs() {
  std::vector<std::filesystem::path> configs;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() / "configs"))
    if (entry.path().extension() == ".toml" && entry.path().stem() != "t6-demo") configs.push_back(entry.path());
  std::sort(configs.begin(), configs.end());
  return configs;
}

std::string plan_command(const std::filesystem::path& config, int64_t world, const std::string& extra = "") {
  return (bin_dir() / "t6_pretrain").string() + " --config " + config.string() + " --plan --world " +
         std::to_string(world) + " " + extra;
}

// The text after "memory" on the line of `output` that starts with `label` ("  memory      ").
std::string memory_line(const std::string& output, const std::string& label) {
  const std::regex pattern(label + "([0-9.]+ [KMG]iB \\([^\n]*\\)) per rank");
  std::smatch match;
  return std::regex_search(output, match, pattern) ? match[1].str() : "";
}

}  // namespace

TEST(TrainingPlan, EveryPaperConfigSplitsItsBatchAtEveryWorldAndTpSize) {
  const std::vector<std::filesystem::path> configs = paper_configs();
  ASSERT_GE(configs.size(), 9u);
  int planned = 0;
  for (const auto& path : configs)
    for (const int64_t world : {1, 8, 16, 32, 64})
      for (const int64_t tp : {1, 2, 4}) {
        RunConfig config = load_run_config(path.string(), {str("parallel.tp=", tp)});
        if (tp > world || tp > config.model.n_head) continue;  // one rank has no TP 2; "where the heads allow"
        SCOPED_TRACE(str(path.filename().string(), " world ", world, " TP ", tp));
        std::string report;
        ASSERT_NO_THROW(report = training_plan_report(config, world));
        EXPECT_NE(report.find(str("world ", world, " = TP ", tp, " × DP ", world / tp)), std::string::npos) << report;
        // The DP shares tile the global batch exactly, each in whole micro-batches.
        const int64_t dp = world / tp;
        int64_t next = 0;
        for (int64_t rank = 0; rank < dp; ++rank) {
          const BatchShare share = batch_share(config.train, rank, dp);
          EXPECT_EQ(share.first_sequence, next);
          EXPECT_EQ(share.micro_steps * share.micro_batch, share.sequences);
          EXPECT_LE(share.micro_batch, kDerivedMicroBatchCap);
          next += share.sequences;
        }
        EXPECT_EQ(next, config.train.global_batch_size);
        ++planned;
      }
  EXPECT_GE(planned, 9 * 13);  // 5 world sizes × 3 TP sizes, less TP 2 and 4 on one rank
}

TEST(TrainingPlan, TheLaunchExamplesPlanAsWritten) {
  // launch/hostfile.example: -np 16 with t6-large; the Slurm script at 4 nodes × 8 tasks with
  // t6-medium; run_local.sh on one 8-GPU node with t6-small.
  for (const auto& [config, world] : std::vector<std::pair<std::string, int>>{
           {"t6-large", 16}, {"t6-medium", 32}, {"t6-small", 8}}) {
    const CommandResult result = run_command(plan_command(source_dir() / "configs" / (config + ".toml"), world));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find(str("world ", world, " = TP 1 × DP ", world)), std::string::npos) << result.output;
  }
  // run_local.sh itself, with its ranks (as mpirun starts them) planning instead of training.
  if (std::filesystem::equivalent(bin_dir(), source_dir() / "build" / "bin")) {
    const CommandResult local = run_command("env NPROC=8 OMPI_MCA_rmaps_base_oversubscribe=1 " + source_dir().string() +
                                            "/launch/run_local.sh " + source_dir().string() + "/configs/t6-small.toml " +
                                            scratch_dir("plan_local").string() + " --plan");
    EXPECT_EQ(local.exit_code, 0) << local.output;
    EXPECT_NE(local.output.find("world 8 = TP 1 × DP 8"), std::string::npos) << local.output;
  }
}

TEST(TrainingPlan, AMicroBatchThatDoesNotSplitListsTheValuesThatWork) {
  RunConfig config = load_run_config((source_dir() / "configs/t6-large.toml").string(), {"train.micro_batch_size=16"});
  const std::string message = [&] {
    try {
      training_plan_report(config, 16);
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string();
  }();
  EXPECT_NE(message.find("train.micro_batch_size (16) must divide"), std::string::npos) << message;
  EXPECT_NE(message.find("30 sequences"), std::string::npos) << message;
  EXPECT_NE(message.find("these work: 1, 2, 3, 5, 6, 10, 15, 30"), std::string::npos) << message;
  // 480 over 64 ranks: shares of 8 and 7, whose only common divisor is 1.
  config.train.micro_batch_size = 0;
  EXPECT_EQ(workable_micro_batch_sizes(480, 64), std::vector<int64_t>{1});
  EXPECT_EQ(batch_share(config.train, 63, 64).first_sequence, 473);
}

class PlanAgainstRuns : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workdir_ = scratch_dir("training_plan");
    corpus_ = workdir_ / "corpus";
    const CommandResult result = run_command((bin_dir() / "t6_preprocess").string() + " --input " +
                                             (source_dir() / "data_tools/corpora/tinyshakespeare.jsonl").string() +
                                             " --output " + corpus_.string() + " --val-fraction 0.1 --shard-tokens 100000");
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }

  static void write_config(const std::filesystem::path& path, const std::string& model) {
    std::ofstream(path) << model << "vocab_size = 50304\n[train]\nseq_len = 32\nglobal_batch_size = 10\nmax_steps = 1\n"
                        << "[data]\npath = \"" << corpus_.string() << "\"\n";
  }

  static inline std::filesystem::path workdir_, corpus_;
};

TEST_F(PlanAgainstRuns, CpuMemoryIsTheStartupTablesMemoryLine) {
  const std::string t6 = "[model]\nkind = \"T6\"\nn_layer = 2\nn_embd = 64\nn_head = 5\nhead_dim = 16\nq_rank = 6\nrank = 2\n";
  const std::string mla = "[model]\nkind = \"llama_mla\"\nn_layer = 2\nn_embd = 64\nn_head = 3\nhead_dim = 16\n"
                          "qk_rope_head_dim = 8\nq_lora_rank = 32\nkv_lora_rank = 16\nv_head_dim = 16\n";
  write_config(workdir_ / "t6.toml", t6);
  write_config(workdir_ / "mla.toml", mla);
  struct Layout {
    std::string config;
    int world;
    std::string settings;
  };
  // Uneven heads (5 on 2 ranks), an uneven batch (10 over 3 and 4 DP ranks), ZeRO-1's padding.
  const std::vector<Layout> layouts = {{"t6", 1, ""},
                                       {"t6", 2, "--set parallel.tp=2"},
                                       {"t6", 3, "--set parallel.zero1=true"},
                                       {"t6", 4, "--set parallel.tp=2 --set parallel.zero1=true --set train.micro_batch_size=1"},
                                       {"mla", 2, "--set parallel.tp=2 --set train.seq_len=48"}};
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.config + " world " + std::to_string(layout.world) + " " + layout.settings);
    const auto config = workdir_ / (layout.config + ".toml");
    const std::string settings = layout.settings + " --set parallel.threads=1";
    const CommandResult plan = run_command(plan_command(config, layout.world, settings));
    ASSERT_EQ(plan.exit_code, 0) << plan.output;
    const auto run_dir = workdir_ / ("run_" + std::to_string(&layout - layouts.data()));
    std::filesystem::remove_all(run_dir);
    const CommandResult run = run_command(mpirun_prefix(layout.world) + (bin_dir() / "t6_pretrain").string() + " --config " +
                                          config.string() + " --run-dir " + run_dir.string() + " " + settings);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const std::string planned = memory_line(plan.output, "  memory CPU  "), started = memory_line(run.output, "  memory      ");
    ASSERT_FALSE(started.empty()) << run.output;
    EXPECT_EQ(planned, started) << plan.output << run.output;
  }
}
