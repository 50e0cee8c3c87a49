// t6_preprocess end to end, run as the built tool: token counts against tiktoken's, output identical
// for any thread count, compressed and directory inputs, the split rule, and the bad-input errors
// (one line naming the file and line, exit 1, no index left).
// ctest-labels: data
// ctest-timeout: 300
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/corpus_reading.h"
#include "common/test_paths.h"
#include "data/corpus_index.h"
#include "data/tokenizer.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::bin_dir;
using testing::scratch_dir;
using testing::source_dir;

struct ToolRun {
  int exit_code;
  std::string out, err;
};

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

ToolRun run_preprocess_tool(const std::string& arguments) {
  const fs::path logs = scratch_dir("preprocess_logs");
  const std::string command = (bin_dir() / "t6_preprocess").string() + " " + arguments + " >" +
                              (logs / "out").string() + " 2>" + (logs / "err").string();
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(logs / "out"), read_file(logs / "err")};
}

fs::path shakespeare_txt() { return source_dir() / "data_tools/corpora/tinyshakespeare.txt"; }
fs::path shakespeare_jsonl() { return source_dir() / "data_tools/corpora/tinyshakespeare.jsonl"; }

TEST(Preprocess, TinyShakespeareTxtIsOneDocumentOf338025TokensPlusEot) {
  const fs::path out = scratch_dir("pre_txt") / "corpus";
  const ToolRun run = run_preprocess_tool("--input " + shakespeare_txt().string() + " --output " + out.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("1 documents"), std::string::npos) << run.out;
  const CorpusIndex index = read_corpus_index(out.string());
  EXPECT_EQ(index.split_tokens("train"), 338026u);
  EXPECT_EQ(index.split_documents("train"), 1u);
  EXPECT_EQ(index.split_tokens("val"), 0u);
  EXPECT_EQ(index.vocab_size, 50257);
  EXPECT_EQ(index.token_dtype, "uint16");
  const std::vector<int32_t> tokens = testing::split_tokens(out, "train");
  ASSERT_EQ(tokens.size(), 338026u);
  EXPECT_EQ(tokens[0], 50256);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(""));
  const std::vector<uint32_t> text_ids(tokens.begin() + 1, tokens.end());
  EXPECT_EQ(tokenizer.decode(text_ids), read_file(shakespeare_txt()));
}

TEST(Preprocess, JsonlParagraphsSplitByTheValRule) {
  const fs::path out = scratch_dir("pre_jsonl") / "corpus";
  const ToolRun run = run_preprocess_tool("--input " + shakespeare_jsonl().string() + " --output " + out.string() +
                                          " --val-fraction 0.01 --shard-tokens 50000");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const CorpusIndex index = read_corpus_index(out.string());
  EXPECT_EQ(index.split_documents("train") + index.split_documents("val"), 7222u);
  EXPECT_EQ(index.split_documents("val"), 73u);  // ceil(7222 · 0.01)
  EXPECT_EQ(index.split_shards("train").size(), (index.split_tokens("train") + 49999) / 50000);
  // Every document starts with EOT, and EOT appears nowhere else (the text holds none).
  const std::vector<int32_t> train = testing::split_tokens(out, "train");
  EXPECT_EQ(std::count(train.begin(), train.end(), 50256), int64_t(index.split_documents("train")));
  EXPECT_EQ(train[0], 50256);
  const ToolRun verified = run_preprocess_tool("--verify " + out.string());
  EXPECT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_NE(verified.out.find("7222 documents"), std::string::npos) << verified.out;
}

TEST(Preprocess, OutputIsByteIdenticalForAnyThreadCount) {
  const fs::path work = scratch_dir("pre_threads");
  std::vector<fs::path> outputs;
  for (int threads : {1, 2, 5}) {
    outputs.push_back(work / ("threads_" + std::to_string(threads)));
    const ToolRun run = run_preprocess_tool("--input " + shakespeare_jsonl().string() + " " + shakespeare_txt().string() +
                                            " --output " + outputs.back().string() + " --val-fraction 0.02" +
                                            " --shard-tokens 40000 --threads " + std::to_string(threads));
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(outputs[0])) names.push_back(entry.path().filename().string());
  EXPECT_GT(names.size(), 10u);
  for (size_t i = 1; i < outputs.size(); ++i)
    for (const auto& name : names)
      EXPECT_TRUE(read_file(outputs[0] / name) == read_file(outputs[i] / name)) << name << " differs";
}

TEST(Preprocess, CompressedInputsAndDirectoriesGiveTheSameTokens) {
  const fs::path work = scratch_dir("pre_compressed");
  fs::create_directories(work / "tree/b");
  fs::copy_file(shakespeare_jsonl(), work / "tree/b/part.jsonl");
  fs::copy_file(shakespeare_txt(), work / "tree/a.txt");
  std::ofstream(work / "tree/README.md") << "not an input\n";
  ASSERT_EQ(std::system(("gzip -k " + (work / "tree/b/part.jsonl").string()).c_str()), 0);
  ASSERT_EQ(std::system(("zstd -q " + (work / "tree/a.txt").string() + " -o " + (work / "a.txt.zst").string()).c_str()), 0);
  ASSERT_EQ(std::system(("gzip -c " + (work / "tree/a.txt").string() + " > " + (work / "a.txt.gz").string()).c_str()), 0);

  // Directory order is sorted: tree/a.txt, tree/b/part.jsonl, tree/b/part.jsonl.gz.
  const ToolRun from_tree = run_preprocess_tool("--input " + (work / "tree").string() + " --output " + (work / "tree_out").string());
  ASSERT_EQ(from_tree.exit_code, 0) << from_tree.err;
  const ToolRun from_files = run_preprocess_tool("--input " + (work / "a.txt.zst").string() + " " +
                                                 shakespeare_jsonl().string() + " " +
                                                 (work / "tree/b/part.jsonl.gz").string() + " --output " +
                                                 (work / "files_out").string());
  ASSERT_EQ(from_files.exit_code, 0) << from_files.err;
  const CorpusIndex tree_index = read_corpus_index((work / "tree_out").string());
  EXPECT_EQ(tree_index.sources.size(), 3u);
  EXPECT_EQ(tree_index.split_documents("train"), 1u + 2 * 7222u);
  EXPECT_EQ(testing::split_tokens(work / "tree_out", "train"), testing::split_tokens(work / "files_out", "train"));
  const ToolRun gz = run_preprocess_tool("--input " + (work / "a.txt.gz").string() + " --output " + (work / "gz_out").string());
  ASSERT_EQ(gz.exit_code, 0) << gz.err;
  EXPECT_EQ(read_corpus_index((work / "gz_out").string()).split_tokens("train"), 338026u);
}

// Each bad input: exit 1, one line "t6_preprocess: error: ..." holding `expected`, and no index.json.
void expect_refused(const std::string& arguments, const fs::path& out, const std::string& expected) {
  const ToolRun run = run_preprocess_tool(arguments + " --output " + out.string());
  EXPECT_EQ(run.exit_code, 1) << arguments;
  EXPECT_EQ(run.err.rfind("t6_preprocess: error: ", 0), 0u) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(out / "index.json")) << arguments;
  if (fs::exists(out)) {
    for (const auto& entry : fs::directory_iterator(out)) ADD_FAILURE() << "left behind: " << entry.path();
  }
}

TEST(Preprocess, BadInputsAreRefusedNamingFileAndLine) {
  const fs::path work = scratch_dir("pre_bad");
  const std::string good_line = R"({"text": "Hello there."})";
  std::ofstream(work / "malformed.jsonl") << good_line << "\n" << good_line << "\n{\"text\": \"unterminated\n";
  std::ofstream(work / "no_field.jsonl") << good_line << "\n\n" << R"({"body": "x"})" << "\n";
  std::ofstream(work / "not_string.jsonl") << R"({"text": 42})" << "\n";
  std::ofstream(work / "empty.jsonl") << "\n\n";
  std::ofstream(work / "five.jsonl") << good_line << "\n" << good_line << "\n" << good_line << "\n" << good_line << "\n"
                                     << good_line << "\n";
  std::ofstream(work / "broken.jsonl.gz") << "this is not gzip data at all, not at all";
  std::ofstream(work / "notes.md") << "markdown";

  const std::string in = "--input " + work.string() + "/";
  // Big enough that shards are written before the bad line is reached: they must be removed again.
  expect_refused("--input " + shakespeare_jsonl().string() + " " + (work / "malformed.jsonl").string() +
                     " --shard-tokens 20000",
                 work / "out1", (work / "malformed.jsonl").string() + ":3: malformed JSON");
  expect_refused(in + "no_field.jsonl", work / "out2", (work / "no_field.jsonl").string() + ":3: no field \"text\"");
  expect_refused(in + "not_string.jsonl", work / "out3", "not_string.jsonl:1: field \"text\" is a number");
  expect_refused(in + "empty.jsonl", work / "out4", "empty corpus");
  expect_refused(in + "missing.txt", work / "out5", (work / "missing.txt").string() + ": no such file or directory");
  expect_refused(in + "broken.jsonl.gz", work / "out6", (work / "broken.jsonl.gz").string() + ": not gzip data");
  ASSERT_EQ(std::system(("gzip -c " + shakespeare_jsonl().string() + " | head -c 100000 > " +
                         (work / "truncated.jsonl.gz").string()).c_str()), 0);
  expect_refused(in + "truncated.jsonl.gz", work / "out11",
                 (work / "truncated.jsonl.gz").string() + ": corrupt or truncated gzip");
  expect_refused(in + "notes.md", work / "out7", "notes.md: unknown input type");
  expect_refused(in + "five.jsonl --val-docs 5", work / "out8", "the train split would be empty");
  expect_refused(in + "five.jsonl --val-fraction 1.5", work / "out9", "--val-fraction must be in [0, 1)");
  expect_refused(in + "five.jsonl --jsonl-field body", work / "out10", "five.jsonl:1: no field \"body\"");
}

TEST(Preprocess, ExistingOutputNeedsOverwrite) {
  const fs::path work = scratch_dir("pre_exists");
  const std::string input = "--input " + shakespeare_jsonl().string() + " --output " + (work / "corpus").string();
  ASSERT_EQ(run_preprocess_tool(input + " --shard-tokens 30000").exit_code, 0);
  const ToolRun again = run_preprocess_tool(input);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find((work / "corpus").string() + ": output directory exists (pass --overwrite"), std::string::npos)
      << again.err;
  EXPECT_TRUE(fs::exists(work / "corpus/train_00010.h5")) << "a refused run must not touch the old corpus";
  const ToolRun overwritten = run_preprocess_tool(input + " --overwrite");
  ASSERT_EQ(overwritten.exit_code, 0) << overwritten.err;
  EXPECT_FALSE(fs::exists(work / "corpus/train_00001.h5")) << "stale shards of the old corpus remain";
  EXPECT_EQ(read_corpus_index((work / "corpus").string()).split_documents("train"), 7222u);
}

TEST(Preprocess, HelpWorks) {
  const ToolRun run = run_preprocess_tool("--help");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("--val-fraction"), std::string::npos);
}

}  // namespace
}  // namespace t6
