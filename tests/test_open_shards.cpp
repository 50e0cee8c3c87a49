// OpenShards and the loader over a corpus of ~2,100 shards: at most N shard files are open whatever
// the shard count, windows read through a small pool are the windows read with every shard open,
// and t6_pretrain trains on that corpus under `ulimit -n 256` with bounded memory (the same run with
// an unbounded pool runs out of file descriptors, naming a shard).
// ctest-labels: data
// ctest-timeout: 180
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/command.h"
#include "common/child_process.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "data/corpus_index.h"
#include "data/open_shards.h"
#include "data/preprocess.h"
#include "data/shard_format.h"
#include "data/shard_reader.h"
#include "data/token_loader.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

constexpr int64_t kSeqLen = 64;

// ~2,100 train shards of 130 tokens: the first 22k tokens of the bundled corpus in 130-token shards,
// those shards copied over and over under new names (t6_preprocess writes each shard durably, some
// 50 ms apiece under load: writing 2,000 would take minutes), then its val shards.
constexpr size_t kTrainShards = 2100;

fs::path write_many_shard_corpus() {
  const fs::path work = scratch_dir("many_shards");
  {
    std::ifstream whole(testing::source_dir() / "data_tools/corpora/tinyshakespeare.jsonl");
    std::ofstream part(work / "part.jsonl");
    std::string line;
    for (int documents = 0; documents < 500 && std::getline(whole, line); ++documents) part << line << "\n";
  }
  PreprocessOptions options;
  options.inputs = {(work / "part.jsonl").string()};
  options.output_dir = (work / "seed").string();
  options.val_fraction = 0.1;
  options.shard_tokens = 130;
  run_preprocess(options);
  const CorpusIndex seed = read_corpus_index(options.output_dir);
  CorpusIndex index = seed;
  index.shards.clear();
  const fs::path corpus = work / "corpus";
  fs::create_directory(corpus);
  const std::vector<ShardSummary> train = seed.split_shards("train");
  for (size_t i = 0; i < kTrainShards; ++i) {
    ShardSummary shard = train[i % train.size()];
    const std::string source = shard.file;
    shard.file = shard_format::shard_file_name("train", int64_t(i));
    fs::copy_file(fs::path(options.output_dir) / source, corpus / shard.file);
    index.shards.push_back(shard);
  }
  for (const ShardSummary& shard : seed.split_shards("val")) {
    fs::copy_file(fs::path(options.output_dir) / shard.file, corpus / shard.file);
    index.shards.push_back(shard);
  }
  write_corpus_index(corpus.string(), index);
  return corpus;
}

const fs::path& many_shard_corpus() {
  static const fs::path path = write_many_shard_corpus();
  return path;
}

size_t open_file_descriptors() {
  return size_t(std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

TEST(OpenShards, ClosesTheLeastRecentlyReadShard) {
  const CorpusIndex index = read_corpus_index(many_shard_corpus().string());
  const auto shard_path = [&](size_t i) { return (many_shard_corpus() / index.shards[i].file).string(); };
  const size_t before = open_file_descriptors();
  OpenShards shards(2);
  const ShardReader* first = &shards.get(shard_path(0));
  shards.get(shard_path(1));
  EXPECT_EQ(&shards.get(shard_path(0)), first) << "an open shard was reopened";
  shards.get(shard_path(2));  // closes shard 1, the least recently read
  EXPECT_EQ(shards.open_count(), 2u);
  EXPECT_EQ(&shards.get(shard_path(0)), first) << "the most recently read shard was closed";
  EXPECT_EQ(open_file_descriptors(), before + 2);
  EXPECT_EQ(shards.get(shard_path(1)).path(), shard_path(1));
  testing::expect_mentions(testing::error_of([&] { shards.get(shard_path(0) + ".missing"); }),
                           {shard_path(0) + ".missing", "shard file is missing"});
}

// Every token of a split, read shard by shard with one ShardReader at a time (independent of the pool).
std::vector<int32_t> split_tokens(const fs::path& directory, const std::string& split) {
  std::vector<int32_t> stream;
  for (const auto& shard : read_corpus_index(directory.string()).split_shards(split)) {
    const ShardReader reader((directory / shard.file).string());
    const size_t end = stream.size();
    stream.resize(end + reader.length());
    reader.read_tokens(0, reader.length(), stream.data() + end);
  }
  return stream;
}

TEST(OpenShards, ManyShardsReadThroughASmallPoolGiveTheRightWindows) {
  const CorpusIndex index = read_corpus_index(many_shard_corpus().string());
  ASSERT_EQ(index.split_shards("train").size(), kTrainShards);
  const std::vector<int32_t> train = split_tokens(many_shard_corpus(), "train");
  const size_t before = open_file_descriptors();
  TokenLoader loader(many_shard_corpus().string(), kSeqLen, 3, 8);
  EXPECT_LE(open_file_descriptors(), before + 8) << "opening the corpus left more than 8 shards open";
  constexpr int64_t kBatch = 64;
  std::vector<int32_t> inputs(kBatch * kSeqLen), targets(kBatch * kSeqLen);
  for (int64_t step = 0; step < 40; ++step) {  // 2,560 windows of 65 tokens: most shards
    loader.read_train(step, 0, kBatch, inputs.data(), targets.data());
    for (int64_t j = 0; j < kBatch; ++j) {
      const auto window = train.begin() + loader.train_window_start(step, j);
      ASSERT_TRUE(std::equal(window, window + kSeqLen, inputs.begin() + j * kSeqLen)) << "step " << step;
      ASSERT_TRUE(std::equal(window + 1, window + kSeqLen + 1, targets.begin() + j * kSeqLen)) << "step " << step;
    }
    ASSERT_LE(loader.open_shards(), 8u);
  }
  const std::vector<int32_t> val = split_tokens(many_shard_corpus(), "val");
  std::vector<int32_t> val_inputs(size_t(loader.val_windows() * kSeqLen)), val_targets(val_inputs.size());
  loader.read_val(0, loader.val_windows(), val_inputs.data(), val_targets.data());  // every val shard
  EXPECT_TRUE(std::equal(val.begin(), val.begin() + kSeqLen, val_inputs.begin()));
  EXPECT_LE(loader.open_shards(), 8u);
  EXPECT_LE(open_file_descriptors(), before + 8);
}

// t6_pretrain on `corpus` in a child whose descriptor limit is 256 (start-up opens every shard to
// check it against the index); returns its output, and the largest peak RSS of metrics.jsonl.
struct UlimitRun {
  testing::CommandResult result;
  double peak_rss_mib = 0;
};

UlimitRun pretrain_under_ulimit(const std::string& label, const fs::path& corpus, int64_t max_open_shards) {
  const fs::path work = scratch_dir(label);
  RunConfig config = testing::tiny_run_config(ModelKind::T6, corpus.string());
  config.train.micro_batch_size = 8;
  config.train.max_steps = 3;
  config.data.max_open_shards = max_open_shards;
  config.log.peak_flops = 1e9;  // no SGEMM measurement at start-up
  const fs::path toml = testing::write_run_toml(config, work / "run.toml");
  UlimitRun run{testing::run_command("sh -c 'ulimit -n 256; exec " + (testing::bin_dir() / "t6_pretrain").string() +
                                         " --config " + toml.string() + " --run-dir " + (work / "run").string() + "' 2>&1",
                                     120)};
  std::ifstream metrics(work / "run/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);)
    run.peak_rss_mib = std::max(run.peak_rss_mib, nlohmann::json::parse(line).value("peak_rss_mib", 0.0));
  return run;
}

TEST(OpenShards, PretrainOnTwoThousandShardsUnderUlimit256WithBoundedMemory) {
  const fs::path few_shards = testing::write_shakespeare_corpus((scratch_dir("few_shards") / "corpus").string());
  const UlimitRun baseline = pretrain_under_ulimit("few_shards_pretrain", few_shards, 64);
  ASSERT_EQ(baseline.result.exit_code, 0) << baseline.result.output;
  const UlimitRun many = pretrain_under_ulimit("many_shards_pretrain", many_shard_corpus(), 64);
  ASSERT_EQ(many.result.exit_code, 0) << many.result.output;
  // 64 open shards cost at most 64 × (1 MiB of chunk cache + ~0.6 MiB of HDF5's per-file state);
  // with every one of 2,601 shards of a corpus open, a run measured ~1.5 GiB more than the baseline.
  EXPECT_GT(baseline.peak_rss_mib, 0);
  std::cout << "peak RSS: " << baseline.peak_rss_mib << " MiB on 4 shards, " << many.peak_rss_mib << " MiB on "
            << read_corpus_index(many_shard_corpus().string()).shards.size() << " shards (64 open at most)\n";
  EXPECT_LT(many.peak_rss_mib, baseline.peak_rss_mib + 110)
      << "peak RSS " << many.peak_rss_mib << " MiB, " << baseline.peak_rss_mib << " MiB on 4 shards";

  // With every shard kept open the run exceeds the limit at start-up, naming the shard it could not open.
  const UlimitRun unbounded = pretrain_under_ulimit("many_shards_unbounded", many_shard_corpus(), 100'000);
  EXPECT_NE(unbounded.result.exit_code, 0) << unbounded.result.output;
  EXPECT_NE(unbounded.result.output.find(".h5"), std::string::npos) << unbounded.result.output;
}

}  // namespace
}  // namespace t6
