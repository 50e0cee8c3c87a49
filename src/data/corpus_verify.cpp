#include "data/corpus_verify.h"

#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"
#include "data/split_stream.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;

// Reads a shard block by block: checksum, id range, and the EOT at every document start.
void verify_shard(const ShardReader& shard, const CorpusIndex& index) {
  constexpr uint64_t kBlockTokens = uint64_t(1) << 20;
  std::vector<unsigned char> stored(kBlockTokens * size_t(shard.token_bytes()));
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> checksum(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset(checksum.get());
  auto token_at = [&](size_t i) -> uint64_t {
    if (shard.token_bytes() == 2) return uint64_t(stored[2 * i]) | uint64_t(stored[2 * i + 1]) << 8;
    return uint64_t(stored[4 * i]) | uint64_t(stored[4 * i + 1]) << 8 | uint64_t(stored[4 * i + 2]) << 16 |
           uint64_t(stored[4 * i + 3]) << 24;
  };
  const std::vector<uint64_t> doc_offsets = shard.read_doc_offsets();
  T6_CHECK(doc_offsets.size() == shard.attributes().document_count, shard.path(), ": doc_offsets holds ",
           doc_offsets.size(), " entries, attribute document_count says ", shard.attributes().document_count);
  size_t next_doc = 0;
  for (uint64_t block_start = 0; block_start < shard.length(); block_start += kBlockTokens) {
    const uint64_t count = std::min(kBlockTokens, shard.length() - block_start);
    shard.read_stored_tokens(block_start, count, stored.data());
    XXH3_64bits_update(checksum.get(), stored.data(), count * size_t(shard.token_bytes()));
    for (size_t i = 0; i < count; ++i)
      T6_CHECK(token_at(i) < uint64_t(index.vocab_size), shard.path(), ": token ", block_start + i, " is id ",
               token_at(i), ", outside the vocab of ", index.vocab_size);
    for (; next_doc < doc_offsets.size() && doc_offsets[next_doc] < block_start + count; ++next_doc) {
      const uint64_t offset = doc_offsets[next_doc];
      T6_CHECK(offset >= block_start && (next_doc == 0 || offset > doc_offsets[next_doc - 1]), shard.path(),
               ": doc_offsets are not strictly increasing at entry ", next_doc);
      T6_CHECK(token_at(size_t(offset - block_start)) == uint64_t(index.eot_id), shard.path(), ": document ",
               next_doc, " at token ", offset, " does not start with EOT");
    }
  }
  T6_CHECK(next_doc == doc_offsets.size(), shard.path(), ": doc_offsets entry ", next_doc, " (",
           next_doc < doc_offsets.size() ? doc_offsets[next_doc] : 0, ") is past the end of the tokens");
  const std::string actual = shard_format::checksum_hex(XXH3_64bits_digest(checksum.get()));
  T6_CHECK(actual == shard.attributes().checksum, shard.path(), ": tokens checksum is ", actual,
           ", the file's attribute and index.json say ", shard.attributes().checksum);
}

// The index's own fields that the loader's start-up checks do not compare with the shards: the
// token dtype, the "splits" summary, the shard names and the sources; and no shard file unlisted.
void verify_index_fields(const std::string& directory, const CorpusIndex& index, const std::string& split,
                         const SplitStream& stream) {
  const std::string index_path = (fs::path(directory) / kCorpusIndexFile).string();
  const int token_bytes = shard_format::token_bytes_for_vocab(index.vocab_size);
  const std::string dtype = token_bytes == 2 ? "uint16" : "uint32";
  T6_CHECK(index.token_dtype == dtype, index_path, ": token_dtype is '", index.token_dtype, "', a vocab of ",
           index.vocab_size, " is stored as ", dtype);
  const std::vector<ShardSummary> listed = index.split_shards(split);
  CorpusIndex::SplitTotals actual;
  for (size_t n = 0; n < listed.size(); ++n) {
    const std::string expected_name = shard_format::shard_file_name(split, int64_t(n));
    T6_CHECK(listed[n].file == expected_name, index_path, ": ", split, " shard ", n, " is listed as ", listed[n].file,
             ", expected ", expected_name);
    const ShardReader& shard = stream.shard(n);
    T6_CHECK(shard.token_bytes() == token_bytes, shard.path(), ": tokens are ", shard.token_bytes(),
             "-byte integers, index.json's token_dtype is ", index.token_dtype);
    for (const std::string& source : shard.attributes().source_files)
      T6_CHECK(std::find(index.sources.begin(), index.sources.end(), source) != index.sources.end(), shard.path(),
               ": source file ", source, " is not among index.json's sources");
    actual.tokens += shard.length();
    actual.documents += shard.attributes().document_count;
    ++actual.shards;
  }
  const auto recorded = index.recorded_splits.find(split);
  T6_CHECK(recorded != index.recorded_splits.end(), index_path, ": splits has no entry for ", split);
  const CorpusIndex::SplitTotals& said = recorded->second;
  T6_CHECK(said.tokens == actual.tokens && said.documents == actual.documents && said.shards == actual.shards,
           index_path, ": splits.", split, " says ", said.tokens, " tokens, ", said.documents, " documents, ",
           said.shards, " shards; the shards hold ", actual.tokens, ", ", actual.documents, ", ", actual.shards);
}

void verify_no_unlisted_shards(const std::string& directory, const CorpusIndex& index) {
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".h5")) continue;
    const bool listed = std::any_of(index.shards.begin(), index.shards.end(),
                                    [&](const ShardSummary& shard) { return shard.file == name; });
    T6_CHECK(listed, entry.path().string(), ": shard file not listed in ",
             (fs::path(directory) / kCorpusIndexFile).string(), " (left from another corpus?)");
  }
}

}  // namespace

CorpusVerification verify_corpus(const std::string& directory) {
  const CorpusIndex index = read_corpus_index(directory);
  CorpusVerification result;
  for (const std::string split : {"train", "val"}) {
    OpenShards open_shards(1);  // one shard at a time, whatever the corpus' size
    const SplitStream stream(directory, index, split, open_shards);  // the loader's checks against the index
    verify_index_fields(directory, index, split, stream);
    for (size_t i = 0; i < stream.shard_count(); ++i) {
      const ShardReader& shard = stream.shard(i);
      verify_shard(shard, index);
      ++result.shards;
      result.tokens += shard.length();
      result.documents += shard.attributes().document_count;
    }
  }
  verify_no_unlisted_shards(directory, index);
  return result;
}

}  // namespace t6
