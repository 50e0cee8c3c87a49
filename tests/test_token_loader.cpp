// TokenLoader: windows are the right tokens, the global batch of a step is the same for any DP split
// and after a restart, validation is sequential, and a damaged corpus is refused naming the file.
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <tuple>

#include "common/corpus_reading.h"
#include "common/file_damage.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "core/error.h"
#include "core/hdf5_util.h"
#include "data/corpus_index.h"
#include "data/corpus_verify.h"
#include "data/preprocess.h"
#include "data/shard_format.h"
#include "data/token_loader.h"
#include "data/tokenizer.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::scratch_dir;

constexpr int64_t kSeqLen = 64;
constexpr uint64_t kSeed = 1337;

// A corpus of many small documents in shards of 3,000 tokens, so windows cross shard boundaries.
fs::path make_corpus(const std::string& label) {
  const fs::path work = scratch_dir(label);
  {
    std::ofstream jsonl(work / "docs.jsonl");
    std::mt19937 random(42);
    const std::vector<std::string> words = {"the", "king", "speaks", "and", "all", "hear", "him", ",", ".", "\n"};
    for (int d = 0; d < 400; ++d) {
      std::string text;
      for (int w = 0, n = 5 + int(random() % 60); w < n; ++w) text += words[random() % words.size()] + " ";
      jsonl << nlohmann::json{{"text", text}}.dump() << "\n";
    }
  }
  PreprocessOptions options;
  options.inputs = {(work / "docs.jsonl").string()};
  options.output_dir = (work / "corpus").string();
  options.val_fraction = 0.05;
  options.threads = 2;
  options.shard_tokens = 3000;
  run_preprocess(options);
  return work / "corpus";
}

const fs::path& corpus() {
  static const fs::path path = make_corpus("loader");
  return path;
}

TEST(TokenLoader, SizesMatchTheIndex) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  const CorpusIndex index = read_corpus_index(corpus().string());
  EXPECT_EQ(loader.vocab_size(), 50257);
  EXPECT_EQ(uint64_t(loader.train_tokens()), index.split_tokens("train"));
  EXPECT_EQ(uint64_t(loader.val_tokens()), index.split_tokens("val"));
  EXPECT_GT(index.split_shards("train").size(), 3u);
  EXPECT_EQ(loader.val_windows(), loader.val_tokens() / (kSeqLen + 1));
}

TEST(TokenLoader, TrainWindowsAreTheStreamAtTheDrawnStarts) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  const std::vector<int32_t> stream = testing::split_tokens(corpus(), "train");
  ASSERT_EQ(int64_t(stream.size()), loader.train_tokens());
  constexpr int64_t kBatch = 32;
  std::vector<int32_t> inputs(kBatch * kSeqLen), targets(kBatch * kSeqLen);
  int crossing_shards = 0;
  for (int64_t step = 0; step < 20; ++step) {
    loader.read_train(step, 0, kBatch, inputs.data(), targets.data());
    for (int64_t j = 0; j < kBatch; ++j) {
      const int64_t start = loader.train_window_start(step, j);
      ASSERT_GE(start, 0);
      ASSERT_LE(start + kSeqLen + 1, int64_t(stream.size()));
      for (int64_t t = 0; t < kSeqLen; ++t) {
        ASSERT_EQ(inputs[size_t(j * kSeqLen + t)], stream[size_t(start + t)]);
        ASSERT_EQ(targets[size_t(j * kSeqLen + t)], stream[size_t(start + t + 1)]);
      }
      if (start / 3000 != (start + kSeqLen) / 3000) ++crossing_shards;
    }
  }
  EXPECT_GT(crossing_shards, 0) << "no window crossed a shard boundary";
}

TEST(TokenLoader, StartsCoverTheStreamUniformly) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  const int64_t starts = loader.train_tokens() - kSeqLen;
  constexpr int kBins = 10, kDraws = 20000;
  std::vector<int> histogram(kBins);
  for (int i = 0; i < kDraws; ++i) ++histogram[size_t(loader.train_window_start(i / 100, i % 100) * kBins / starts)];
  // Expected 2,000 per bin, standard deviation ≈ 42: 6 sigma is 255.
  for (int count : histogram) EXPECT_NEAR(count, kDraws / kBins, 255);
}

TEST(TokenLoader, SameGlobalBatchForOneTwoAndFourDataParallelRanks) {
  constexpr int64_t kGlobalBatch = 16;
  for (int64_t step : {0, 1, 7, 123456}) {
    std::vector<int32_t> whole_inputs(kGlobalBatch * kSeqLen), whole_targets(kGlobalBatch * kSeqLen);
    TokenLoader single(corpus().string(), kSeqLen, kSeed);
    single.read_train(step, 0, kGlobalBatch, whole_inputs.data(), whole_targets.data());
    for (int64_t ranks : {2, 4}) {
      std::vector<int32_t> inputs(kGlobalBatch * kSeqLen), targets(kGlobalBatch * kSeqLen);
      const int64_t per_rank = kGlobalBatch / ranks;
      for (int64_t rank = 0; rank < ranks; ++rank) {
        TokenLoader loader(corpus().string(), kSeqLen, kSeed);  // each rank has its own loader
        loader.read_train(step, rank * per_rank, per_rank, inputs.data() + rank * per_rank * kSeqLen,
                          targets.data() + rank * per_rank * kSeqLen);
      }
      EXPECT_EQ(inputs, whole_inputs) << ranks << " ranks, step " << step;
      EXPECT_EQ(targets, whole_targets) << ranks << " ranks, step " << step;
    }
  }
}

TEST(TokenLoader, ResumeAtAStepReproducesTheStream) {
  constexpr int64_t kBatch = 8;
  auto read_steps = [](TokenLoader& loader, int64_t first, int64_t last) {
    std::vector<int32_t> all, inputs(kBatch * kSeqLen), targets(kBatch * kSeqLen);
    for (int64_t step = first; step < last; ++step) {
      loader.read_train(step, 0, kBatch, inputs.data(), targets.data());
      all.insert(all.end(), inputs.begin(), inputs.end());
    }
    return all;
  };
  TokenLoader uninterrupted(corpus().string(), kSeqLen, kSeed);
  const std::vector<int32_t> full = read_steps(uninterrupted, 0, 10);
  TokenLoader restarted(corpus().string(), kSeqLen, kSeed);
  const std::vector<int32_t> tail = read_steps(restarted, 6, 10);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), full.end() - ptrdiff_t(tail.size())));
  // And the stream does depend on the step and the seed.
  TokenLoader other_seed(corpus().string(), kSeqLen, kSeed + 1);
  EXPECT_NE(read_steps(other_seed, 0, 10), full);
  const size_t per_step = size_t(kBatch * kSeqLen);
  EXPECT_FALSE(std::equal(full.begin(), full.begin() + ptrdiff_t(per_step), full.begin() + ptrdiff_t(per_step)));
}

TEST(TokenLoader, ValidationWindowsAreConsecutive) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  const std::vector<int32_t> stream = testing::split_tokens(corpus(), "val");
  ASSERT_EQ(int64_t(stream.size()), loader.val_tokens());
  ASSERT_GE(loader.val_windows(), 3);
  const int64_t count = loader.val_windows() - 1;
  std::vector<int32_t> inputs(size_t(count * kSeqLen)), targets(size_t(count * kSeqLen));
  loader.read_val(1, count, inputs.data(), targets.data());
  for (int64_t w = 0; w < count; ++w) {
    const int64_t start = (w + 1) * (kSeqLen + 1);
    for (int64_t t = 0; t < kSeqLen; ++t) {
      ASSERT_EQ(inputs[size_t(w * kSeqLen + t)], stream[size_t(start + t)]);
      ASSERT_EQ(targets[size_t(w * kSeqLen + t)], stream[size_t(start + t + 1)]);
    }
  }
  EXPECT_NE(error_of([&] { loader.read_val(loader.val_windows(), 1, inputs.data(), targets.data()); }), "");
}

fs::path copy_of_corpus(const std::string& label) {
  const fs::path copy = scratch_dir(label) / "corpus";
  fs::copy(corpus(), copy);
  return copy;
}

TEST(TokenLoader, RefusesAShardWhoseChecksumDisagreesWithTheIndex) {
  const fs::path copy = copy_of_corpus("loader_checksum");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(copy / "index.json"));
  index["shards"][2]["xxh3_64"] = "0123456789abcdef";
  const std::string shard = index["shards"][2]["file"];
  std::ofstream(copy / "index.json") << index.dump(2);
  const std::string message = error_of([&] { TokenLoader loader(copy.string(), kSeqLen, kSeed); });
  EXPECT_NE(message.find((copy / shard).string()), std::string::npos) << message;
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST(TokenLoader, RefusesAnotherTokenizerOrVocab) {
  const fs::path copy = copy_of_corpus("loader_vocab");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(copy / "index.json"));
  index["vocab_size"] = 50304;
  std::ofstream(copy / "index.json") << index.dump(2);
  const std::string message = error_of([&] { TokenLoader loader(copy.string(), kSeqLen, kSeed); });
  EXPECT_NE(message.find("train_00000.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("vocab size 50257 vs 50304"), std::string::npos) << message;
}

// One shard rewritten as if split by other Unicode tables (or another tokenizer file): the loader
// and the verifier refuse the corpus, naming that shard.
TEST(TokenLoader, RefusesAShardOfAnotherUnicodeVersionOrTokenizerFile) {
  const CorpusIndex index = read_corpus_index(corpus().string());
  EXPECT_EQ(index.unicode_version, "16.0.0");
  EXPECT_EQ(index.tokenizer_sha256, kTokenizerSha256);
  for (const auto& [attribute, value, expected] :
       {std::tuple{shard_format::kUnicodeVersionAttribute, "15.0.0", "Unicode version 15.0.0 vs 16.0.0"},
        std::tuple{shard_format::kTokenizerSha256Attribute, "0badc0de", "tokenizer file SHA-256 0badc0de vs "}}) {
    const fs::path copy = copy_of_corpus("loader_unicode");
    const fs::path shard = copy / "train_00002.h5";
    {
      Hdf5Handle file(H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
      ASSERT_GE(H5Adelete(file.get(), attribute), 0);
      write_string_attribute(file.get(), attribute, value, shard.string());
    }
    for (const std::string& message : {error_of([&] { TokenLoader loader(copy.string(), kSeqLen, kSeed); }),
                                       error_of([&] { verify_corpus(copy.string()); })})
      testing::expect_mentions(message, {shard.string(), expected});
  }
}

TEST(TokenLoader, MissingOrTruncatedShardIsNamed) {
  const fs::path copy = copy_of_corpus("loader_missing");
  fs::remove(copy / "train_00001.h5");
  std::string message = error_of([&] { TokenLoader loader(copy.string(), kSeqLen, kSeed); });
  EXPECT_NE(message.find((copy / "train_00001.h5").string() + ": shard file is missing"), std::string::npos)
      << message;

  const fs::path truncated = copy_of_corpus("loader_truncated");
  fs::resize_file(truncated / "val_00000.h5", fs::file_size(truncated / "val_00000.h5") - 1000);
  message = error_of([&] { TokenLoader loader(truncated.string(), kSeqLen, kSeed); });
  EXPECT_NE(message.find((truncated / "val_00000.h5").string()), std::string::npos) << message;

  message = error_of([&] { TokenLoader loader((truncated / "nowhere").string(), kSeqLen, kSeed); });
  EXPECT_NE(message.find("index.json"), std::string::npos) << message;
}

// Flips one byte in the middle of a shard's token data: the loader opens it (cheap checks), the
// read of a window there fails naming the file, and the full verification pass names it too.
TEST(TokenLoader, CorruptTokensAreDetectedOnReadAndByVerify) {
  const fs::path copy = copy_of_corpus("loader_corrupt");
  EXPECT_EQ(verify_corpus(copy.string()).tokens, read_corpus_index(copy.string()).split_tokens("train") +
                                                      read_corpus_index(copy.string()).split_tokens("val"));
  const fs::path shard = copy / "train_00000.h5";
  const uint64_t address = testing::hdf5_chunk_offset(shard, "tokens", 0);
  testing::flip_bits(shard, address + 2000, 0x7f);
  testing::flip_bits(shard, address + 2001, 0x01);
  TokenLoader loader(copy.string(), kSeqLen, kSeed);
  std::vector<int32_t> inputs(static_cast<size_t>(kSeqLen)), targets(static_cast<size_t>(kSeqLen));
  std::string message;
  for (int64_t step = 0; step < 2000 && message.empty(); ++step) {
    if (loader.train_window_start(step, 0) >= 2900) continue;  // only windows inside the damaged chunk
    message = error_of([&] { loader.read_train(step, 0, 1, inputs.data(), targets.data()); });
  }
  EXPECT_NE(message.find(shard.string()), std::string::npos) << message;
  message = error_of([&] { verify_corpus(copy.string()); });
  EXPECT_NE(message.find(shard.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace t6
