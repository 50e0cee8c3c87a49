// How t6_preprocess replaces its output (corpus_staging.h), run as the built tool: --overwrite swaps
// the old corpus for the new one only once the new one is complete; a failed run (a bad input, a
// full disk, injected or a real small tmpfs) prints one line, leaves the old corpus intact and
// verifying, and leaves no staging directory and no empty output directory behind.
// ctest-labels: data
// ctest-timeout: 300
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/small_tmpfs.h"
#include "common/test_paths.h"
#include "data/corpus_index.h"
#include "data/corpus_verify.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

struct ToolRun {
  int exit_code;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::stringstream contents;
  contents << std::ifstream(path, std::ios::binary).rdbuf();
  return contents.str();
}

ToolRun preprocess(const std::string& arguments, const std::string& environment = "") {
  const fs::path err = scratch_dir("staging_logs") / "err";
  const std::string command = environment + " " + (testing::bin_dir() / "t6_preprocess").string() + " " + arguments +
                              " >/dev/null 2>" + err.string();
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(err)};
}

const fs::path jsonl = testing::source_dir() / "data_tools/corpora/tinyshakespeare.jsonl";
const fs::path txt = testing::source_dir() / "data_tools/corpora/tinyshakespeare.txt";

std::vector<std::string> entries(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The first `lines` lines of tinyshakespeare.jsonl, then `tail`.
fs::path jsonl_prefix(const fs::path& path, int lines, const std::string& tail = "") {
  std::ifstream in(jsonl);
  std::ofstream out(path);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
  out << tail;
  return path;
}

void expect_one_line_naming(const ToolRun& run, const std::vector<std::string>& parts) {
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  for (const auto& part : parts) EXPECT_NE(run.err.find(part), std::string::npos) << part << " in " << run.err;
}

TEST(CorpusStaging, OverwriteReplacesTheOldCorpusOnlyWhenTheNewOneIsComplete) {
  const fs::path work = scratch_dir("staging_overwrite"), corpus = work / "corpus";
  const std::string output = " --output " + corpus.string() + " --shard-tokens 30000";
  ASSERT_EQ(preprocess("--input " + jsonl.string() + output).exit_code, 0);
  const std::string old_index = read_file(corpus / "index.json");
  ASSERT_GE(read_corpus_index(corpus.string()).shards.size(), 11u);
  auto expect_old_corpus_intact = [&] {
    EXPECT_EQ(entries(work), std::vector<std::string>{"corpus"}) << "a staging directory was left behind";
    EXPECT_EQ(read_file(corpus / "index.json"), old_index);
    EXPECT_EQ(verify_corpus(corpus.string()).documents, 7222u);
  };

  // A bad line after 5,000 good ones: shards of the new corpus were written before the error.
  const fs::path bad = jsonl_prefix(work.parent_path() / "staging_bad.jsonl", 5000, "{\"text\": 3}\n");
  expect_one_line_naming(preprocess("--overwrite --input " + bad.string() + output), {bad.string() + ":5001"});
  expect_old_corpus_intact();

  // The disk fills while the shards are written.
  expect_one_line_naming(preprocess("--overwrite --input " + jsonl.string() + output, "T6_SHARD_DISK_FULL=1"),
                         {"train_00000.h5", "No space left on device"});
  expect_old_corpus_intact();

  // A complete run replaces the old corpus as a whole: no shard of the old one stays.
  const fs::path small = jsonl_prefix(work.parent_path() / "staging_small.jsonl", 100);
  ASSERT_EQ(preprocess("--overwrite --input " + small.string() + output).exit_code, 0);
  EXPECT_EQ(entries(work), std::vector<std::string>{"corpus"});
  EXPECT_EQ(entries(corpus), (std::vector<std::string>{"index.json", "train_00000.h5"}));
  EXPECT_EQ(verify_corpus(corpus.string()).documents, 100u);
}

TEST(CorpusStaging, AFailedRunLeavesNoOutputDirectoryAndNoParentItCreated) {
  const fs::path work = scratch_dir("staging_failed");
  const fs::path bad = jsonl_prefix(work / "bad.jsonl", 10, "not json\n");
  expect_one_line_naming(preprocess("--input " + bad.string() + " --output " + (work / "new/deeper/corpus").string()),
                         {bad.string() + ":11"});
  EXPECT_EQ(entries(work), std::vector<std::string>{"bad.jsonl"});
  expect_one_line_naming(preprocess("--input " + jsonl.string() + " --output " + (work / "full/corpus").string(),
                                    "T6_SHARD_DISK_FULL=1"),
                         {"No space left on device"});
  EXPECT_EQ(entries(work), std::vector<std::string>{"bad.jsonl"});
}

TEST(CorpusStaging, OverwriteRefusesADirectoryHoldingMoreThanACorpus) {
  const fs::path work = scratch_dir("staging_foreign"), corpus = work / "corpus";
  const fs::path small = jsonl_prefix(work / "small.jsonl", 50);
  ASSERT_EQ(preprocess("--input " + small.string() + " --output " + corpus.string()).exit_code, 0);
  std::ofstream(corpus / "notes.txt") << "mine";
  expect_one_line_naming(preprocess("--overwrite --input " + small.string() + " --output " + corpus.string()),
                         {corpus.string(), "holds notes.txt, which is not part of a corpus"});
  EXPECT_EQ(entries(corpus), (std::vector<std::string>{"index.json", "notes.txt", "train_00000.h5"}));
}

// A real full disk: a 512 KiB tmpfs holds a small corpus but not tinyshakespeare's 676 KB of tokens.
TEST(CorpusStaging, RealFullTmpfsLeavesTheOldCorpusAndOneLine) {
  const testing::SmallTmpfs tmpfs("staging_tmpfs", "512k");
  if (!tmpfs.mounted()) GTEST_SKIP() << "mounting a tmpfs is not allowed here";
  const fs::path& mount_point = tmpfs.path();
  const fs::path corpus = mount_point / "corpus";
  expect_one_line_naming(preprocess("--input " + txt.string() + " --output " + corpus.string()),
                         {"train_00000.h5", "No space left on device"});
  EXPECT_TRUE(entries(mount_point).empty()) << "a failed run left files on the full disk";

  const fs::path small = jsonl_prefix(scratch_dir("staging_tmpfs_input") / "small.jsonl", 200);
  ASSERT_EQ(preprocess("--input " + small.string() + " --output " + corpus.string()).exit_code, 0);
  const std::string old_index = read_file(corpus / "index.json");
  expect_one_line_naming(preprocess("--overwrite --input " + txt.string() + " --output " + corpus.string()),
                         {"No space left on device"});
  EXPECT_EQ(entries(mount_point), std::vector<std::string>{"corpus"});
  EXPECT_EQ(read_file(corpus / "index.json"), old_index);
  EXPECT_EQ(verify_corpus(corpus.string()).documents, 200u);
}

}  // namespace
}  // namespace t6
