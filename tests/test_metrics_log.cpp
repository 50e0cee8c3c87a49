// A sample's text cut inside a UTF-8 character is written with U+FFFD and adds no TensorBoard event.
// A full disk under metrics.jsonl and the TensorBoard events (a small tmpfs; skipped where mounting
// is not allowed): a record that does not fit is not left half-written, the error is one line
// naming the file; a run whose disk fills stops at that step with one line, metrics.jsonl ends with
// a whole record, `latest` still verifies, and once space is freed the resumed run's losses are
// bit-identical to an uninterrupted run's, every step once.
// ctest-timeout: 180
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_verify.h"
#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/small_tmpfs.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "run/trainer.h"
#include "train/metrics_log.h"

T6_MPI_TEST_ENVIRONMENT();

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

// Fills the filesystem of `directory` to the last block with one file.
void fill_disk(const fs::path& filler) {
  std::FILE* file = std::fopen(filler.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  const std::string block(1 << 16, 'x');
  while (std::fwrite(block.data(), 1, block.size(), file) == block.size()) {
  }
  std::fclose(file);
  // Smaller pieces into the last partial block, in case a write fell short.
  file = std::fopen((filler.string() + ".tail").c_str(), "wb");
  if (file) {
    while (std::fwrite("x", 1, 1, file) == 1 && std::fflush(file) == 0) {
    }
    std::fclose(file);
  }
}

std::vector<nlohmann::json> records_of(const fs::path& path) {
  std::vector<nlohmann::json> records;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    records.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_FALSE(records.back().is_discarded()) << "a torn line in " << path << ": " << line;
  }
  return records;
}

uintmax_t event_file_bytes(const fs::path& tensorboard) {
  uintmax_t bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(tensorboard)) bytes += entry.file_size();
  return bytes;
}

// A sample generation's text may end inside a UTF-8 character: the record is still written, the
// broken bytes as U+FFFD, and a record without numbers adds no TensorBoard event.
TEST(MetricsLog, ASampleCutInsideACharacterIsWrittenWithAReplacementAndNoEvent) {
  const fs::path dir = scratch_dir("metrics_text"), metrics = dir / "metrics.jsonl", tensorboard = dir / "tensorboard";
  MetricsLog log(metrics.string(), -1, tensorboard);
  log.write({{"step", 1}, {"loss", 2.5}});
  const uintmax_t events = event_file_bytes(tensorboard);
  EXPECT_GT(events, 0u);
  log.write({{"step", 2}, {"sample", std::string("caf\xc3")}});
  const std::vector<nlohmann::json> records = records_of(metrics);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["sample"].get<std::string>(), "caf\xef\xbf\xbd");
  EXPECT_EQ(event_file_bytes(tensorboard), events);
}

TEST(MetricsLog, ARecordThatDoesNotFitIsNotLeftHalfWritten) {
  const testing::SmallTmpfs tmpfs("metrics_tmpfs", "64k");
  if (!tmpfs.mounted()) GTEST_SKIP() << "mounting a tmpfs is not permitted here";
  const fs::path metrics = tmpfs.path() / "metrics.jsonl", tensorboard = tmpfs.path() / "tensorboard";
  MetricsLog log(metrics.string(), -1, tensorboard);
  fill_disk(tmpfs.path() / "filler");
  int64_t step = 0;
  std::string message;
  uintmax_t metrics_size = 0;
  // Records of ~1 kB: the first ones fill the files' last partial blocks, then one falls short.
  for (; step < 100 && message.empty(); ++step) {
    metrics_size = fs::file_size(metrics);
    message = testing::error_of([&] { log.write({{"step", step}, {"loss", 1.5}, {"note", std::string(1000, 'n')}}); });
  }
  testing::expect_mentions(message, {"No space left on device", "was not written"});
  const std::vector<nlohmann::json> records = records_of(metrics);
  if (message.find(metrics.string()) != std::string::npos) {
    EXPECT_EQ(fs::file_size(metrics), metrics_size) << "the failed record left bytes behind";
    EXPECT_EQ(int64_t(records.size()), step - 1);
  } else {
    // The TensorBoard event of that record did not fit: its metrics line is whole.
    testing::expect_mentions(message, {tensorboard.string()});
    EXPECT_EQ(int64_t(records.size()), step);
  }
  // Both files still read back whole once the disk has room again: reopening parses every event.
  fs::remove(tmpfs.path() / "filler");
  MetricsLog reopened(metrics.string(), step, tensorboard);
  reopened.write({{"step", step}, {"loss", 1.0}});
  EXPECT_EQ(records_of(metrics).back()["step"], step);
}

RunConfig run_config(const std::string& corpus, int64_t max_steps) {
  RunConfig config = testing::tiny_run_config(ModelKind::T6, corpus);
  config.train.micro_batch_size = 8;
  config.train.max_steps = max_steps;
  config.train.lr_decay_steps = 12;
  config.log.peak_flops = 1e9;
  config.log.tensorboard = true;
  return config;
}

std::vector<double> train(const RunConfig& config, const fs::path& run_dir, ResumeMode resume,
                          const Trainer::GradientHook& hook = {}) {
  ProcessGrid grid(testing::communicator_of(MPI_COMM_SELF), 1, 0);
  Trainer trainer(config, grid, run_dir.string(), resume);
  if (hook) trainer.set_gradient_hook(hook);
  trainer.run();
  return testing::read_step_records(run_dir.string()).losses;
}

TEST(MetricsLog, ARunWhoseDiskFillsStopsCleanlyAndResumesBitIdentically) {
  // The checkpoints of the tiny model are ~40 MB; the tmpfs holds two, the metrics and some room.
  const testing::SmallTmpfs tmpfs("metrics_run_tmpfs", "160m");
  if (!tmpfs.mounted()) GTEST_SKIP() << "mounting a tmpfs is not permitted here";
  const std::string corpus = testing::write_shakespeare_corpus((scratch_dir("metrics_corpus") / "corpus").string());
  const std::vector<double> uninterrupted = train(run_config(corpus, 12), scratch_dir("metrics_uninterrupted"),
                                                  ResumeMode::from_config);
  ASSERT_EQ(uninterrupted.size(), 12u);

  const fs::path run_dir = tmpfs.path() / "run";
  train(run_config(corpus, 2), run_dir, ResumeMode::from_config);  // a checkpoint of step 2
  // Resumed towards step 12 with no checkpoint until the end. The disk fills in the step whose
  // record no longer fits in the last block of metrics.jsonl (tmpfs blocks are pages): that record
  // is cut short by the full disk, and the run has to stop at that step.
  const fs::path filler = tmpfs.path() / "filler";
  const fs::path metrics = run_dir / "metrics.jsonl";
  bool filled = false;
  const std::string message = testing::error_of([&] {
    train(run_config(corpus, 12), run_dir, ResumeMode::latest, [&](int64_t, ModelWeights&) {
      std::ifstream file(metrics);
      std::string line, last;
      while (std::getline(file, line)) last = line;
      const uintmax_t page = uintmax_t(sysconf(_SC_PAGESIZE));
      const uintmax_t block_left = page - fs::file_size(metrics) % page;
      if (!filled && block_left + 40 < last.size()) {
        fill_disk(filler);
        filled = true;
      }
    });
  });
  ASSERT_TRUE(filled) << message;
  testing::expect_mentions(message, {"stopping at step ", "No space left on device", "could not be saved either",
                                     "free space, then resume with --resume"});
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 0) << message;
  const std::vector<nlohmann::json> records = records_of(run_dir / "metrics.jsonl");
  ASSERT_FALSE(records.empty());
  const int64_t stopped_at = std::stoll(message.substr(message.find("stopping at step ") + 17));
  EXPECT_GT(stopped_at, 2);
  EXPECT_EQ(records.back()["step"].get<int64_t>() + 1, stopped_at) << message;
  const fs::path checkpoints = run_dir / "checkpoints";
  for (const auto& entry : fs::directory_iterator(checkpoints))
    EXPECT_TRUE(entry.path().filename() == "latest" || entry.path().filename() == "step_00000002") << entry.path();
  EXPECT_TRUE(checkpoint::verify_checkpoint(checkpoints / "step_00000002").empty());

  fs::remove(filler);
  fs::remove(filler.string() + ".tail");
  const std::vector<double> resumed = train(run_config(corpus, 12), run_dir, ResumeMode::latest);
  EXPECT_EQ(resumed, uninterrupted);  // every step once, the same bits
}

}  // namespace
}  // namespace t6
