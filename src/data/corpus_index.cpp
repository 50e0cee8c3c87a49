#include "data/corpus_index.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/durable_file.h"
#include "core/error.h"
#include "data/shard_format.h"

namespace t6 {

uint64_t CorpusIndex::split_tokens(const std::string& split) const {
  uint64_t total = 0;
  for (const auto& shard : shards)
    if (shard.split == split) total += shard.tokens;
  return total;
}

uint64_t CorpusIndex::split_documents(const std::string& split) const {
  uint64_t total = 0;
  for (const auto& shard : shards)
    if (shard.split == split) total += shard.documents;
  return total;
}

std::vector<ShardSummary> CorpusIndex::split_shards(const std::string& split) const {
  std::vector<ShardSummary> selected;
  for (const auto& shard : shards)
    if (shard.split == split) selected.push_back(shard);
  return selected;
}

CorpusIndex read_corpus_index(const std::string& directory) {
  const std::string path = (std::filesystem::path(directory) / kCorpusIndexFile).string();
  std::ifstream file(path);
  T6_CHECK(file, path, ": cannot open the corpus index (is ", directory,
           " a corpus written by t6_preprocess, and did that run finish?)");
  CorpusIndex index;
  try {
    const nlohmann::json json = nlohmann::json::parse(file);
    index.format_version = json.at("format_version").get<int64_t>();
    index.tokenizer = json.at("tokenizer").get<std::string>();
    index.tokenizer_sha256 = json.at("tokenizer_sha256").get<std::string>();
    index.unicode_version = json.at("unicode_version").get<std::string>();
    index.vocab_size = json.at("vocab_size").get<int64_t>();
    index.eot_id = json.at("eot_id").get<int64_t>();
    index.token_dtype = json.at("token_dtype").get<std::string>();
    for (const auto& shard : json.at("shards")) {
      index.shards.push_back({shard.at("file").get<std::string>(), shard.at("split").get<std::string>(),
                              shard.at("tokens").get<uint64_t>(), shard.at("documents").get<uint64_t>(),
                              shard.at("xxh3_64").get<std::string>()});
    }
    index.sources = json.at("sources").get<std::vector<std::string>>();
    for (const auto& [split, totals] : json.at("splits").items())
      index.recorded_splits[split] = {totals.at("tokens").get<uint64_t>(), totals.at("documents").get<uint64_t>(),
                                      totals.at("shards").get<uint64_t>()};
  } catch (const nlohmann::json::exception& error) {
    fail(str(path, ": malformed corpus index: ", error.what()));
  }
  T6_CHECK(index.format_version == shard_format::kFormatVersion, path, ": corpus format version ",
           index.format_version, ", this t6 reads version ", shard_format::kFormatVersion);
  for (const auto& shard : index.shards)
    T6_CHECK(shard.split == "train" || shard.split == "val", path, ": shard ", shard.file, " has unknown split '",
             shard.split, "'");
  return index;
}

void write_corpus_index(const std::string& directory, const CorpusIndex& index) {
  nlohmann::json json;
  json["format_version"] = index.format_version;
  json["tokenizer"] = index.tokenizer;
  json["tokenizer_sha256"] = index.tokenizer_sha256;
  json["unicode_version"] = index.unicode_version;
  json["vocab_size"] = index.vocab_size;
  json["eot_id"] = index.eot_id;
  json["token_dtype"] = index.token_dtype;
  for (const std::string split : {"train", "val"})
    json["splits"][split] = {{"tokens", index.split_tokens(split)},
                             {"documents", index.split_documents(split)},
                             {"shards", index.split_shards(split).size()}};
  json["shards"] = nlohmann::json::array();
  for (const auto& shard : index.shards)
    json["shards"].push_back({{"file", shard.file}, {"split", shard.split}, {"tokens", shard.tokens},
                              {"documents", shard.documents}, {"xxh3_64", shard.checksum}});
  json["sources"] = index.sources;
  const std::string text = json.dump(2) + "\n";

  write_file_atomically(std::filesystem::path(directory) / kCorpusIndexFile, text);
}

}  // namespace t6
