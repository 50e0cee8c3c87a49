// t6_preprocess --verify (verify_corpus) checks every field of index.json against the shards: a
// corpus with one field of its index changed is refused, naming the file and the field, and the
// untouched corpus verifies.
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "data/corpus_index.h"
#include "data/corpus_verify.h"
#include "data/preprocess.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::error_of;
using testing::expect_mentions;

// tinyshakespeare.jsonl: 4 train shards of 100,000 tokens or fewer, 1 val shard.
const fs::path& corpus() {
  static const fs::path path = [] {
    const fs::path out = testing::scratch_dir("verify_corpus") / "corpus";
    PreprocessOptions options;
    options.inputs = {(testing::source_dir() / "data_tools/corpora/tinyshakespeare.jsonl").string()};
    options.output_dir = out.string();
    options.val_fraction = 0.01;
    options.shard_tokens = 100'000;
    run_preprocess(options);
    return out;
  }();
  return path;
}

// A copy of the corpus with its index.json changed by `edit`.
fs::path corpus_with_index(const std::string& label, const std::function<void(json&)>& edit) {
  const fs::path copy = testing::scratch_dir("verify_" + label) / "corpus";
  fs::copy(corpus(), copy, fs::copy_options::recursive);
  json index = json::parse(std::ifstream(copy / "index.json"));
  edit(index);
  std::ofstream(copy / "index.json") << index.dump(2);
  return copy;
}

TEST(CorpusVerify, TheUntouchedCorpusVerifies) {
  const CorpusIndex index = read_corpus_index(corpus().string());
  ASSERT_EQ(index.split_shards("train").size(), 4u);
  ASSERT_EQ(index.split_shards("val").size(), 1u);
  const CorpusVerification result = verify_corpus(corpus().string());
  EXPECT_EQ(result.shards, 5);
  EXPECT_EQ(result.tokens, index.split_tokens("train") + index.split_tokens("val"));
  EXPECT_EQ(result.documents, 7222u);  // 7149 train, 73 val
}

TEST(CorpusVerify, EveryFieldOfTheIndexIsCheckedAgainstTheShards) {
  struct Case {
    std::string label;
    std::function<void(json&)> edit;
    std::vector<std::string> expected;  // besides the corpus directory
  };
  const std::vector<Case> cases = {
      {"format_version", [](json& j) { j["format_version"] = 1; }, {"corpus format version 1"}},
      {"tokenizer", [](json& j) { j["tokenizer"] = "p50k_base"; }, {"tokenizer r50k_base vs p50k_base"}},
      {"tokenizer_sha256", [](json& j) { j["tokenizer_sha256"] = std::string(64, '0'); }, {"tokenizer file SHA-256"}},
      {"unicode_version", [](json& j) { j["unicode_version"] = "15.1.0"; }, {"Unicode version 16.0.0 vs 15.1.0"}},
      {"vocab_size", [](json& j) { j["vocab_size"] = 50258; }, {"vocab size 50257 vs 50258"}},
      {"eot_id", [](json& j) { j["eot_id"] = 0; }, {"EOT id 50256 vs 0"}},
      {"token_dtype", [](json& j) { j["token_dtype"] = "uint32"; }, {"token_dtype is 'uint32'"}},
      {"splits_tokens", [](json& j) { j["splits"]["train"]["tokens"] = j["splits"]["train"]["tokens"].get<int>() + 1; },
       {"splits.train says"}},
      {"splits_documents", [](json& j) { j["splits"]["val"]["documents"] = 72; }, {"splits.val says", "72 documents"}},
      {"splits_shards", [](json& j) { j["splits"]["train"]["shards"] = 5; }, {"splits.train says", "5 shards"}},
      {"splits_missing", [](json& j) { j["splits"].erase("val"); }, {"splits has no entry for val"}},
      {"shard_tokens", [](json& j) { j["shards"][1]["tokens"] = 99'999; }, {"train_00001.h5", "token count 100000 vs 99999"}},
      {"shard_documents", [](json& j) { j["shards"][2]["documents"] = 1; }, {"train_00002.h5", "document count"}},
      {"shard_checksum", [](json& j) { j["shards"][0]["xxh3_64"] = "0123456789abcdef"; },
       {"train_00000.h5", "tokens checksum", "0123456789abcdef"}},
      {"shard_split", [](json& j) { j["shards"][4]["split"] = "train"; }, {"val_00000.h5", "split val vs train"}},
      {"shard_missing", [](json& j) { j["shards"][3]["file"] = "train_00009.h5"; }, {"train_00009.h5", "missing"}},
      {"shard_order", [](json& j) { std::swap(j["shards"][0], j["shards"][1]); },
       {"train shard 0 is listed as train_00001.h5"}},
      {"sources", [](json& j) { j["sources"] = json::array({"other.jsonl"}); },
       {"tinyshakespeare.jsonl is not among index.json's sources"}},
  };
  for (const Case& bad : cases) {
    SCOPED_TRACE(bad.label);
    const fs::path copy = corpus_with_index(bad.label, bad.edit);
    std::vector<std::string> expected = bad.expected;
    expected.push_back(copy.string());
    expect_mentions(error_of([&] { verify_corpus(copy.string()); }), expected);
  }
}

TEST(CorpusVerify, AShardFileTheIndexDoesNotListIsRefused) {
  const fs::path copy = corpus_with_index("stray", [](json&) {});
  fs::copy_file(copy / "train_00000.h5", copy / "train_00004.h5");
  expect_mentions(error_of([&] { verify_corpus(copy.string()); }), {(copy / "train_00004.h5").string(), "not listed"});
}

}  // namespace
}  // namespace t6
