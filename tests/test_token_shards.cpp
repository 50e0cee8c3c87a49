// Token shard files: what the writer puts in comes back exactly through the reader and through the
// HDF5 command-line tools; damage is reported with the file's name.
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <functional>
#include <fstream>
#include <random>

#include "common/file_damage.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "core/error.h"
#include "data/shard_reader.h"
#include "data/shard_writer.h"

namespace t6 {
namespace {

using testing::error_of;
using testing::scratch_dir;

struct Document {
  std::vector<uint32_t> ids;  // EOT first
};

std::vector<Document> random_documents(int count, uint32_t vocab_size, uint32_t eot, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<Document> documents(static_cast<size_t>(count));
  for (auto& document : documents) {
    document.ids.push_back(eot);
    const size_t length = random() % 700;
    for (size_t i = 0; i < length; ++i) document.ids.push_back(uint32_t(random() % (vocab_size - 1)));
  }
  return documents;
}

std::string run_and_capture(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t count;
  while ((count = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, count);
  pclose(pipe);
  return output;
}

struct WrittenSplit {
  std::vector<ShardSummary> shards;
  std::vector<uint32_t> stream;                    // every token of the split, in order
  std::vector<std::vector<uint64_t>> doc_offsets;  // per shard
};

WrittenSplit write_split(const std::filesystem::path& directory, const std::vector<Document>& documents,
                         const ShardSpec& spec, uint64_t shard_tokens) {
  WrittenSplit written;
  SplitWriter writer(directory.string(), spec, shard_tokens);
  for (size_t d = 0; d < documents.size(); ++d) {
    const uint64_t start = written.stream.size();
    if (start / shard_tokens >= written.doc_offsets.size()) written.doc_offsets.resize(start / shard_tokens + 1);
    written.doc_offsets[start / shard_tokens].push_back(start % shard_tokens);
    writer.begin_document("doc_source_" + std::to_string(d % 3) + ".txt");
    // Appended in uneven pieces, as the preprocessor does.
    const auto& ids = documents[d].ids;
    for (size_t at = 0; at < ids.size(); at += 97) writer.append(ids.data() + at, std::min<size_t>(97, ids.size() - at));
    written.stream.insert(written.stream.end(), ids.begin(), ids.end());
  }
  written.shards = writer.finish();
  return written;
}

TEST(TokenShards, WrittenTokensAndOffsetsReadBackExactly) {
  const auto directory = scratch_dir("shards");
  const ShardSpec spec{"r50k_base", 50257, 50256, "train", 0, "306cd27f", "16.0.0"};
  const uint64_t shard_tokens = 20000;
  const auto documents = random_documents(150, 50257, 50256, 1);
  const WrittenSplit written = write_split(directory, documents, spec, shard_tokens);
  const size_t expected_shards = (written.stream.size() + shard_tokens - 1) / shard_tokens;
  ASSERT_EQ(written.shards.size(), expected_shards);
  ASSERT_GE(expected_shards, 3u);

  for (size_t s = 0; s < written.shards.size(); ++s) {
    const ShardSummary& summary = written.shards[s];
    EXPECT_EQ(summary.file, "train_0000" + std::to_string(s) + ".h5");
    const ShardReader reader((directory / summary.file).string());
    const uint64_t first = s * shard_tokens;
    const uint64_t count = std::min<uint64_t>(shard_tokens, written.stream.size() - first);
    ASSERT_EQ(reader.length(), count);
    std::vector<int32_t> tokens(count);
    reader.read_tokens(0, count, tokens.data());
    for (uint64_t i = 0; i < count; ++i) ASSERT_EQ(uint32_t(tokens[i]), written.stream[first + i]) << "token " << i;
    EXPECT_EQ(reader.read_doc_offsets(), written.doc_offsets[s]);

    // The checksum is XXH3-64 of the little-endian uint16 values, computed here independently.
    std::vector<uint16_t> narrow(written.stream.begin() + ptrdiff_t(first),
                                 written.stream.begin() + ptrdiff_t(first + count));
    char expected_checksum[17];
    std::snprintf(expected_checksum, sizeof expected_checksum, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(narrow.data(), narrow.size() * 2)));
    const auto& attributes = reader.attributes();
    EXPECT_EQ(attributes.checksum, expected_checksum);
    EXPECT_EQ(summary.checksum, expected_checksum);
    EXPECT_EQ(attributes.format_version, 2);
    EXPECT_EQ(attributes.tokenizer, "r50k_base");
    EXPECT_EQ(attributes.tokenizer_sha256, "306cd27f");
    EXPECT_EQ(attributes.unicode_version, "16.0.0");
    EXPECT_EQ(attributes.vocab_size, 50257);
    EXPECT_EQ(attributes.eot_id, 50256);
    EXPECT_EQ(attributes.split, "train");
    EXPECT_EQ(attributes.token_count, count);
    EXPECT_EQ(attributes.document_count, written.doc_offsets[s].size());
    EXPECT_EQ(reader.token_bytes(), 2);
    EXPECT_FALSE(attributes.source_files.empty());
  }
  // A read in the middle, by hyperslab.
  const ShardReader second((directory / written.shards[1].file).string());
  std::vector<int32_t> middle(300);
  second.read_tokens(12345, 300, middle.data());
  for (size_t i = 0; i < 300; ++i) ASSERT_EQ(uint32_t(middle[i]), written.stream[shard_tokens + 12345 + i]);
}

TEST(TokenShards, LargeVocabStoresUint32AndGzipReadsBack) {
  const auto directory = scratch_dir("shards_wide");
  const ShardSpec spec{"wide", 100000, 99999, "val", 6, "5ca1ab1e", "16.0.0"};
  const auto documents = random_documents(20, 100000, 99999, 2);
  const WrittenSplit written = write_split(directory, documents, spec, 1'000'000);
  ASSERT_EQ(written.shards.size(), 1u);
  const ShardReader reader((directory / "val_00000.h5").string());
  EXPECT_EQ(reader.token_bytes(), 4);
  std::vector<int32_t> tokens(reader.length());
  reader.read_tokens(0, tokens.size(), tokens.data());
  ASSERT_EQ(tokens.size(), written.stream.size());
  for (size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(uint32_t(tokens[i]), written.stream[i]);
  EXPECT_NE(run_and_capture("h5ls -v " + (directory / "val_00000.h5").string()).find("deflate"), std::string::npos);
}

TEST(TokenShards, OpenWithTheHdf5Tools) {
  const auto directory = scratch_dir("shards_tools");
  const ShardSpec spec{"r50k_base", 50257, 50256, "train", 0, "306cd27f", "16.0.0"};
  const auto documents = random_documents(5, 50257, 50256, 3);
  const WrittenSplit written = write_split(directory, documents, spec, 1'000'000);
  const std::string path = (directory / "train_00000.h5").string();

  const std::string listing = run_and_capture("h5ls " + path);
  EXPECT_NE(listing.find("tokens                   Dataset {" + std::to_string(written.stream.size()) + "/Inf}"),
            std::string::npos)
      << listing;
  EXPECT_NE(listing.find("doc_offsets              Dataset {5/Inf}"), std::string::npos) << listing;

  const std::string first_tokens = run_and_capture("h5dump -d tokens -s 0 -c 3 " + path);
  const std::string expected = std::to_string(written.stream[0]) + ", " + std::to_string(written.stream[1]) + ", " +
                               std::to_string(written.stream[2]);
  EXPECT_NE(first_tokens.find(expected), std::string::npos) << first_tokens;

  const std::string attributes = run_and_capture("h5dump -A " + path);
  EXPECT_NE(attributes.find("\"r50k_base\""), std::string::npos) << attributes;
  EXPECT_NE(attributes.find("ATTRIBUTE \"tokens_xxh3_64\""), std::string::npos) << attributes;
  EXPECT_NE(attributes.find("\"doc_source_0.txt\""), std::string::npos) << attributes;
}

TEST(TokenShards, CorruptChunkIsDetectedAndNamesTheFile) {
  const auto directory = scratch_dir("shards_corrupt");
  const ShardSpec spec{"r50k_base", 50257, 50256, "train", 0, "306cd27f", "16.0.0"};
  write_split(directory, random_documents(150, 50257, 50256, 4), spec, 1'000'000);
  const std::string path = (directory / "train_00000.h5").string();

  // Find where the second chunk of tokens lies in the file, and flip one byte of it.
  ASSERT_GT(ShardReader(path).length(), 2 * 16384u);
  testing::flip_bits(path, testing::hdf5_chunk_offset(path, "tokens", 16384) + 100, 0x5A);
  const ShardReader reader(path);  // opening is cheap and does not read chunks
  std::vector<int32_t> tokens(100);
  EXPECT_NO_THROW(reader.read_tokens(0, 100, tokens.data())) << "chunk 0 is intact";
  const std::string message = error_of([&] { reader.read_tokens(16384 + 10, 100, tokens.data()); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("corrupt"), std::string::npos) << message;
}

TEST(TokenShards, TruncatedOrMissingFileNamesTheFile) {
  const auto directory = scratch_dir("shards_truncated");
  const ShardSpec spec{"r50k_base", 50257, 50256, "train", 0, "306cd27f", "16.0.0"};
  write_split(directory, random_documents(60, 50257, 50256, 5), spec, 1'000'000);
  const auto path = directory / "train_00000.h5";
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const std::string message = error_of([&] { ShardReader reader(path.string()); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  const std::string missing = error_of([&] { ShardReader reader((directory / "train_00009.h5").string()); });
  EXPECT_NE(missing.find("train_00009.h5: shard file is missing"), std::string::npos) << missing;
}

}  // namespace
}  // namespace t6
