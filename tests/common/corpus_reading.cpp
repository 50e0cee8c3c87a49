#include "common/corpus_reading.h"

#include "data/corpus_index.h"
#include "data/shard_reader.h"

namespace t6::testing {

std::vector<int32_t> split_tokens(const std::filesystem::path& directory, const std::string& split) {
  std::vector<int32_t> stream;
  for (const auto& shard : read_corpus_index(directory.string()).split_shards(split)) {
    const ShardReader reader((directory / shard.file).string());
    std::vector<int32_t> tokens(reader.length());
    reader.read_tokens(0, tokens.size(), tokens.data());
    stream.insert(stream.end(), tokens.begin(), tokens.end());
  }
  return stream;
}

}  // namespace t6::testing
