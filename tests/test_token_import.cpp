// t6_preprocess --tokens: llm.c .bin shards and nanoGPT raw uint16 files written here become t6
// corpora that read back through the TokenLoader; the same text through --input and through a .bin
// of its tokens gives identical shards; bad files are one error naming the file, leaving nothing.
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/corpus_reading.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "data/corpus_index.h"
#include "data/corpus_verify.h"
#include "data/preprocess.h"
#include "data/shard_reader.h"
#include "data/token_loader.h"
#include "data/tokenizer.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::scratch_dir;
using testing::split_tokens;

constexpr uint16_t kEot = 50256;

// `count` documents of random ids below the EOT, each EOT first (as llm.c's fineweb.py writes them).
std::vector<uint16_t> random_documents(int count, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<uint16_t> tokens;
  for (int d = 0; d < count; ++d) {
    tokens.push_back(kEot);
    for (size_t i = 0, n = random() % 500; i < n; ++i) tokens.push_back(uint16_t(random() % kEot));
  }
  return tokens;
}

void write_llmc(const fs::path& path, const std::vector<uint16_t>& tokens, int32_t magic = 20240520,
                int32_t version = 1, int64_t header_count = -1) {
  int32_t header[256] = {};
  header[0] = magic;
  header[1] = version;
  header[2] = int32_t(header_count < 0 ? int64_t(tokens.size()) : header_count);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  out.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(2 * tokens.size()));
}

void write_raw(const fs::path& path, const std::vector<uint16_t>& tokens) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(2 * tokens.size()));
}

std::vector<int32_t> widened(const std::vector<uint16_t>& tokens) { return {tokens.begin(), tokens.end()}; }

PreprocessSummary import(const std::vector<fs::path>& inputs, const fs::path& out, const std::string& format = "llmc",
                         uint64_t shard_tokens = 20'000, double val_fraction = 0.0, int threads = 1) {
  PreprocessOptions options;
  options.threads = threads;
  for (const auto& input : inputs) options.token_inputs.push_back(input.string());
  options.tokens_format = format;
  options.output_dir = out.string();
  options.shard_tokens = shard_tokens;
  options.val_fraction = val_fraction;
  return run_preprocess(options);
}

uint64_t eot_count(const std::vector<uint16_t>& tokens) { return uint64_t(std::count(tokens.begin(), tokens.end(), kEot)); }

std::string read_file(const fs::path& path) {
  std::stringstream contents;
  contents << std::ifstream(path, std::ios::binary).rdbuf();
  return contents.str();
}

TEST(TokenImport, LlmcShardsBecomeACorpusSplitByFileName) {
  const fs::path work = scratch_dir("import_llmc");
  fs::create_directories(work / "fineweb");
  const auto val = random_documents(40, 1), train1 = random_documents(150, 2), train2 = random_documents(90, 3);
  write_llmc(work / "fineweb/fineweb_val_000000.bin", val);
  write_llmc(work / "fineweb/fineweb_train_000001.bin", train1);
  write_llmc(work / "fineweb/fineweb_train_000002.bin", train2);
  const PreprocessSummary summary = import({work / "fineweb"}, work / "corpus");

  std::vector<uint16_t> train = train1;
  train.insert(train.end(), train2.begin(), train2.end());
  EXPECT_EQ(split_tokens(work / "corpus", "train"), widened(train));
  EXPECT_EQ(split_tokens(work / "corpus", "val"), widened(val));
  EXPECT_EQ(summary.train_documents, eot_count(train));
  EXPECT_EQ(summary.val_documents, eot_count(val));
  EXPECT_EQ(summary.input_bytes, 3 * 1024 + 2 * (train.size() + val.size()));

  const CorpusIndex index = read_corpus_index((work / "corpus").string());
  EXPECT_EQ(index.split_documents("train"), eot_count(train));
  EXPECT_GE(index.split_shards("train").size(), 3u);  // documents straddle the 20,000-token shards
  EXPECT_EQ(index.tokenizer_sha256, kTokenizerSha256);
  EXPECT_EQ(index.unicode_version, "unknown");
  EXPECT_EQ(index.sources.front(), (work / "fineweb/fineweb_train_000001.bin").string());
  EXPECT_EQ(verify_corpus((work / "corpus").string()).tokens, train.size() + val.size());

  // Windows through the loader are the concatenated train files.
  TokenLoader loader((work / "corpus").string(), 128, 7);
  std::vector<int32_t> inputs(128), targets(128);
  for (int64_t step = 0; step < 50; ++step) {
    loader.read_train(step, 0, 1, inputs.data(), targets.data());
    const int64_t start = loader.train_window_start(step, 0);
    for (size_t t = 0; t < 128; ++t) ASSERT_EQ(inputs[t], train[size_t(start) + t]);
    ASSERT_EQ(targets[127], train[size_t(start) + 128]);
  }
}

// llm.c's fineweb.py fills each shard to its token count, so the last document of one file goes on
// at the start of the next: it stays one document (no EOT is inserted), in one split, whether the
// split comes from the file names or from --val-fraction.
TEST(TokenImport, ADocumentCutAcrossTwoFilesStaysOneDocument) {
  const fs::path work = scratch_dir("import_straddle");
  fs::create_directories(work / "shards");
  const auto documents = random_documents(60, 8);
  const size_t cut = 10'001;
  ASSERT_NE(documents[cut], kEot);  // mid-document
  write_llmc(work / "shards/edu_train_000001.bin", {documents.begin(), documents.begin() + cut});
  write_llmc(work / "shards/edu_train_000002.bin", {documents.begin() + cut, documents.end()});
  const PreprocessSummary by_name = import({work / "shards"}, work / "by_name");
  EXPECT_EQ(split_tokens(work / "by_name", "train"), widened(documents));
  EXPECT_EQ(by_name.train_documents, 60u);
  const CorpusIndex index = read_corpus_index((work / "by_name").string());
  EXPECT_EQ(index.split_documents("train"), 60u);

  // By document number: document d is val when ceil((d+1)/4) > ceil(d/4), i.e. d = 0, 4, 8, ...
  const PreprocessSummary by_number = import({work / "shards"}, work / "by_number", "llmc", 20'000, 0.25);
  std::vector<uint16_t> expected_train, expected_val;
  int64_t document = -1;
  for (uint16_t token : documents) {
    if (token == kEot) ++document;
    (document % 4 == 0 ? expected_val : expected_train).push_back(token);
  }
  EXPECT_EQ(by_number.val_documents, 15u);
  EXPECT_EQ(split_tokens(work / "by_number", "train"), widened(expected_train));
  EXPECT_EQ(split_tokens(work / "by_number", "val"), widened(expected_val));
  EXPECT_EQ(verify_corpus((work / "by_number").string()).documents, 60u);
}

// nanoGPT's prepare.py appends EOT after each document, so train.bin does not start with one: its
// first tokens become a document with an EOT put in front; the trailing EOT starts an empty one.
TEST(TokenImport, RawUint16FilesOfNanoGpt) {
  const fs::path work = scratch_dir("import_raw");
  const std::vector<uint16_t> train = {10, 11, 12, kEot, 20, 21, kEot}, val = {kEot, 30, 31};
  write_raw(work / "train.bin", train);
  write_raw(work / "val.bin", val);
  const PreprocessSummary summary = import({work / "train.bin", work / "val.bin"}, work / "corpus", "raw-u16");
  EXPECT_EQ(split_tokens(work / "corpus", "train"), (std::vector<int32_t>{kEot, 10, 11, 12, kEot, 20, 21, kEot}));
  EXPECT_EQ(split_tokens(work / "corpus", "val"), widened(val));
  EXPECT_EQ(summary.train_documents, 3u);
  EXPECT_EQ(summary.val_documents, 1u);
  const ShardReader shard((work / "corpus/train_00000.h5").string());
  EXPECT_EQ(shard.read_doc_offsets(), (std::vector<uint64_t>{0, 4, 7}));
  EXPECT_EQ(verify_corpus((work / "corpus").string()).documents, 4u);
}

// llm.c's fineweb.py writes [EOT, doc 1, EOT, doc 2, ...] from tiktoken's encode_ordinary: such a
// file of the tokens of tinyshakespeare.jsonl gives the shards --input gives, byte for byte, with
// the same split by --val-fraction, whatever the thread count of the text run.
TEST(TokenImport, SameTextThroughInputAndThroughABinGivesIdenticalShards) {
  const fs::path work = scratch_dir("import_same");
  const fs::path jsonl = testing::source_dir() / "data_tools/corpora/tinyshakespeare.jsonl";
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(""));
  std::vector<uint16_t> tokens;
  std::ifstream lines(jsonl);
  for (std::string line; std::getline(lines, line);) {
    tokens.push_back(kEot);
    for (uint32_t id : tokenizer.encode(nlohmann::json::parse(line).at("text").get<std::string>()))
      tokens.push_back(uint16_t(id));
  }
  write_llmc(work / "shakespeare_train_000000.bin", tokens);

  PreprocessOptions text;
  text.inputs = {jsonl.string()};
  text.output_dir = (work / "from_text").string();
  text.shard_tokens = 100'000;
  text.val_fraction = 0.1;
  text.threads = 2;
  run_preprocess(text);
  import({work / "shakespeare_train_000000.bin"}, work / "from_tokens", "llmc", 100'000, 0.1);

  const CorpusIndex from_text = read_corpus_index(text.output_dir), from_tokens = read_corpus_index((work / "from_tokens").string());
  ASSERT_EQ(from_text.shards.size(), from_tokens.shards.size());
  ASSERT_GE(from_text.shards.size(), 4u);
  for (size_t s = 0; s < from_text.shards.size(); ++s) {
    EXPECT_EQ(from_text.shards[s].file, from_tokens.shards[s].file);
    EXPECT_EQ(from_text.shards[s].documents, from_tokens.shards[s].documents);
    EXPECT_EQ(from_text.shards[s].checksum, from_tokens.shards[s].checksum) << from_text.shards[s].file;
    const ShardReader a((work / "from_text" / from_text.shards[s].file).string());
    const ShardReader b((work / "from_tokens" / from_tokens.shards[s].file).string());
    std::vector<int32_t> tokens_a(a.length()), tokens_b(b.length());
    a.read_tokens(0, a.length(), tokens_a.data());
    b.read_tokens(0, b.length(), tokens_b.data());
    EXPECT_EQ(tokens_a, tokens_b) << from_text.shards[s].file;
    EXPECT_EQ(a.read_doc_offsets(), b.read_doc_offsets()) << from_text.shards[s].file;
  }
  // Converting again, with another thread count, gives the same bytes, index included.
  import({work / "shakespeare_train_000000.bin"}, work / "again", "llmc", 100'000, 0.1, 3);
  EXPECT_EQ(read_file(work / "from_tokens/index.json"), read_file(work / "again/index.json"));
  for (const auto& shard : from_tokens.shards)
    EXPECT_EQ(read_file(work / "from_tokens" / shard.file), read_file(work / "again" / shard.file)) << shard.file;
}

// Each bad file stops the run with one error naming it; the output directory holds no shard and no index.
TEST(TokenImport, BadFilesAreRefusedNamingTheFileAndLeaveNothing) {
  const fs::path work = scratch_dir("import_bad");
  const auto good = random_documents(30, 4);
  write_llmc(work / "good_train_000001.bin", good);
  std::vector<uint16_t> out_of_vocab = good;
  out_of_vocab[777] = 50257;
  struct Case {
    std::string name;
    std::function<void(const fs::path&)> write;
    std::string format;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"bad_magic.bin", [&](const fs::path& p) { write_llmc(p, good, 20240521); }, "llmc", {"bad magic 20240521", "raw-u16"}},
      {"version2.bin", [&](const fs::path& p) { write_llmc(p, good, 20240520, 2); }, "llmc", {"version 2"}},
      {"count.bin", [&](const fs::path& p) { write_llmc(p, good, 20240520, 1, int64_t(good.size()) + 1); }, "llmc",
       {"the header says " + std::to_string(good.size() + 1) + " tokens"}},
      {"short.bin", [&](const fs::path& p) { std::ofstream(p) << "tiny"; }, "llmc", {"shorter than the 1024-byte header"}},
      {"vocab.bin", [&](const fs::path& p) { write_llmc(p, out_of_vocab); }, "llmc", {"token 777 is id 50257", "vocab of 50257"}},
      {"odd.bin", [&](const fs::path& p) { std::ofstream(p, std::ios::binary).write("\x01\x02\x03", 3); }, "raw-u16",
       {"odd byte count 3"}},
      {"vocab_raw.bin", [&](const fs::path& p) { write_raw(p, out_of_vocab); }, "raw-u16", {"token 777 is id 50257"}},
  };
  for (const Case& bad : cases) {
    const fs::path input = work / bad.name, out = work / ("out_" + bad.name);
    bad.write(input);
    const std::vector<fs::path> inputs = bad.format == "llmc" ? std::vector<fs::path>{work / "good_train_000001.bin", input}
                                                               : std::vector<fs::path>{input};
    testing::expect_mentions(error_of([&] { import(inputs, out, bad.format, 1000); }),
                             [&] {
                               std::vector<std::string> parts = bad.expected;
                               parts.push_back(input.string());
                               return parts;
                             }());
    if (fs::exists(out))
      for (const auto& entry : fs::directory_iterator(out)) ADD_FAILURE() << bad.name << " left " << entry.path();
  }
  EXPECT_NE(error_of([&] { import({work / "good_train_000001.bin"}, work / "out_format", "u32"); })
                .find("--tokens-format must be llmc or raw-u16"),
            std::string::npos);
}

// The tool's flags: --tokens with a directory, --tokens-format, and the summary line.
TEST(TokenImport, CommandLine) {
  const fs::path work = scratch_dir("import_cli");
  write_raw(work / "train.bin", random_documents(20, 5));
  write_raw(work / "val.bin", random_documents(5, 6));
  const std::string command = (testing::bin_dir() / "t6_preprocess").string() + " --tokens " + work.string() +
                              " --tokens-format raw-u16 --output " + (work / "corpus").string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("25 documents (20 train, 5 val)"), std::string::npos) << output;
  EXPECT_NE(output.find("MB of token files"), std::string::npos) << output;
  EXPECT_EQ(read_corpus_index((work / "corpus").string()).split_documents("val"), 5u);
}

}  // namespace
}  // namespace t6
