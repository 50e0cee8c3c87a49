// ctest-timeout: 300
// The per-step cost fields (src/train/step_metrics.*) and the TensorBoard event file
// (src/train/tensorboard_log.*) of a real 2-rank t6_pretrain run: MFU and tokens/s equal the hand
// computation from the logged fields and docs/MODEL.md 5, the phases sum to the step time, the peak
// memory covers the arenas of the start-up table, and an independent reader (protobuf's Python
// runtime on tests/tensorboard/*.proto) finds in the event file exactly what metrics.jsonl holds,
// also after a resume.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/command.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "core/crc32c.h"
#include "model/model_config.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

constexpr double kPeakFlopsPerRank = 2e9;

std::vector<nlohmann::json> step_records(const fs::path& metrics) {
  std::ifstream file(metrics);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(file, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("loss")) records.push_back(record);
  }
  return records;
}

class StepMetrics : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workdir_ = scratch_dir("step_metrics");
    const std::string corpus = write_shakespeare_corpus((workdir_ / "corpus").string());
    config_ = workdir_ / "tiny.toml";
    std::ofstream(config_) << "[model]\nkind = \"T6\"\nn_layer = 2\nn_embd = 64\nn_head = 6\nhead_dim = 16\n"
                              "vocab_size = 50304\n"
                              "[train]\nseq_len = 32\nmicro_batch_size = 2\nglobal_batch_size = 8\nmax_steps = 4\n"
                              "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 1\nlr_decay_steps = 8\n"
                              "[data]\npath = \"" << corpus << "\"\n"
                              "[parallel]\nthreads = 1\n[eval]\ninterval = 2\nbatches = 1\n[checkpoint]\ninterval = 2\n"
                              "[log]\ntensorboard = true\npeak_flops = " << kPeakFlopsPerRank << "\n";
  }

  static CommandResult pretrain(const std::string& extra) {
    return run_command(mpirun_prefix(2) + (bin_dir() / "t6_pretrain").string() + " --config " + config_.string() +
                       " --run-dir " + (workdir_ / "run").string() + " " + extra);
  }

  static CommandResult read_events() {
    return run_command("/usr/bin/python3 " + (source_dir() / "tests/tensorboard/read_events.py").string() + " " +
                       (workdir_ / "run/tensorboard").string() + " " + (workdir_ / "run/metrics.jsonl").string());
  }

  static inline fs::path workdir_, config_;
};

TEST(Crc32c, KnownValues) {
  // The check value of CRC-32C and the iSCSI test vector of 32 zero bytes (RFC 3720 B.4).
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST_F(StepMetrics, CostFieldsMatchTheHandComputationAndTensorBoardTheMetrics) {
  const CommandResult first = pretrain("");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::vector<nlohmann::json> records = step_records(workdir_ / "run/metrics.jsonl");
  ASSERT_EQ(records.size(), 4u);

  // docs/MODEL.md 5 for this model: 6 N + 12 L H D T FLOPs per token.
  ModelConfig model{ModelKind::T6, 2, 64, 6, 16, 6, 2, 1, 50304};
  const double flops_per_token = 6.0 * double(model.parameter_count()) + 12.0 * 2 * 6 * 16 * 32;
  // The start-up table's buffers, per rank, but the token loader's shard caches (an upper bound:
  // data.max_open_shards of them, where this corpus has fewer shards).
  std::smatch parts;
  ASSERT_TRUE(std::regex_search(first.output, parts,
                                std::regex(R"(memory +[0-9.]+ \w+ \(weights ([0-9.]+ \w+), gradients ([0-9.]+ \w+), )"
                                           R"(AdamW ([0-9.]+ \w+), activations ([0-9.]+ \w+), batches ([0-9.]+ \w+), )"
                                           R"(prefetch ([0-9.]+ \w+), data)")))
      << first.output;
  const auto mib = [](const std::string& amount) {
    const double value = std::stod(amount);
    return amount.find("GiB") != std::string::npos ? value * 1024
           : amount.find("KiB") != std::string::npos ? value / 1024 : value;
  };
  double arena_mib = 0;
  for (size_t part = 1; part <= 6; ++part) arena_mib += mib(parts[part]);
  for (const nlohmann::json& record : records) {
    SCOPED_TRACE(record.dump());
    const double step_s = record["step_s"];
    ASSERT_GT(step_s, 0);
    EXPECT_DOUBLE_EQ(record["tokens_per_s"].get<double>(), 8.0 * 32 / step_s);
    EXPECT_NEAR(record["mfu"].get<double>(), flops_per_token * 8 * 32 / step_s / (2 * kPeakFlopsPerRank),
                1e-12 * record["mfu"].get<double>());
    const double phases = record["data_s"].get<double>() + record["fwd_bwd_s"].get<double>() +
                          record["comm_s"].get<double>() + record["optimizer_s"].get<double>();
    EXPECT_NEAR(phases, step_s, 0.05 * step_s);
    for (const char* phase : {"data_s", "fwd_bwd_s", "comm_s", "optimizer_s"}) EXPECT_GE(record[phase].get<double>(), 0) << phase;
    EXPECT_GT(record["fwd_bwd_s"].get<double>(), 0);
    // Two DP ranks average their gradients every step.
    EXPECT_GT(record["comm_s"].get<double>(), 0);
    EXPECT_GE(record["peak_rss_mib"].get<double>(), arena_mib);
    EXPECT_EQ(record["skipped_steps"], 0);
    EXPECT_EQ(record["tokens"], record["step"].get<int64_t>() * 8 * 32);
  }
  EXPECT_NE(first.output.find("MFU "), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("4 GFLOP/s over 2 ranks (log.peak_flops)"), std::string::npos) << first.output;

  const CommandResult events = read_events();
  ASSERT_EQ(events.exit_code, 0) << events.output;
  EXPECT_NE(events.output.find("ok 7 events"), std::string::npos) << events.output;  // 4 steps, 3 evaluations

  // Resume from step 2 (as if the run had died after step 4 was logged): the events of steps 3
  // and 4 go, as metrics.jsonl's lines do, and the resumed run's are appended, each step once.
  std::ofstream(workdir_ / "run/checkpoints/latest", std::ios::trunc) << "step_00000002\n";
  const CommandResult resumed = pretrain("--resume --set train.max_steps=6");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_EQ(step_records(workdir_ / "run/metrics.jsonl").size(), 6u);
  const CommandResult after = read_events();
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_NE(after.output.find("ok 10 events"), std::string::npos) << after.output;  // steps 1-6, evals at 0, 2, 4, 6
}

}  // namespace
