#include "data/split_stream.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace t6 {

SplitStream::SplitStream(const std::string& directory, const CorpusIndex& index, const std::string& split,
                         OpenShards& shards)
    : shards_(&shards) {
  for (const ShardSummary& listed : index.split_shards(split)) {
    const std::string path = (std::filesystem::path(directory) / listed.file).string();
    const ShardReader& shard = shards.get(path);
    const auto& found = shard.attributes();
    const std::string mismatch = ": disagrees with " + (std::filesystem::path(directory) / kCorpusIndexFile).string();
    T6_CHECK(found.tokenizer == index.tokenizer, path, mismatch, ": tokenizer ", found.tokenizer, " vs ",
             index.tokenizer);
    T6_CHECK(found.tokenizer_sha256 == index.tokenizer_sha256, path, mismatch, ": tokenizer file SHA-256 ",
             found.tokenizer_sha256, " vs ", index.tokenizer_sha256);
    T6_CHECK(found.unicode_version == index.unicode_version, path, mismatch, ": Unicode version ",
             found.unicode_version, " vs ", index.unicode_version,
             " (shards split by different Unicode tables do not form one corpus)");
    T6_CHECK(found.vocab_size == index.vocab_size, path, mismatch, ": vocab size ", found.vocab_size, " vs ",
             index.vocab_size);
    T6_CHECK(found.eot_id == index.eot_id, path, mismatch, ": EOT id ", found.eot_id, " vs ", index.eot_id);
    T6_CHECK(found.split == split, path, mismatch, ": split ", found.split, " vs ", split);
    T6_CHECK(found.token_count == listed.tokens, path, mismatch, ": token count ", found.token_count, " vs ",
             listed.tokens);
    T6_CHECK(found.document_count == listed.documents, path, mismatch, ": document count ", found.document_count,
             " vs ", listed.documents);
    T6_CHECK(found.checksum == listed.checksum, path, mismatch, ": tokens checksum ", found.checksum, " vs ",
             listed.checksum);
    shard_starts_.push_back(shard_starts_.back() + shard.length());
    paths_.push_back(path);
  }
}

void SplitStream::read(uint64_t offset, uint64_t count, int32_t* out) const {
  T6_ASSERT(offset + count <= tokens());
  // The shard holding `offset`: the last one whose start is ≤ offset.
  size_t shard = size_t(std::upper_bound(shard_starts_.begin(), shard_starts_.end(), offset) - shard_starts_.begin()) - 1;
  while (count > 0) {
    const uint64_t local = offset - shard_starts_[shard];
    const uint64_t length = shard_starts_[shard + 1] - shard_starts_[shard];
    const uint64_t taken = std::min(count, length - local);
    const ShardReader& reader = shards_->get(paths_[shard]);
    // A reopened shard must still be the one checked at start-up (not a corpus rewritten since).
    T6_CHECK(reader.length() == length, reader.path(), ": holds ", reader.length(), " tokens, ", length,
             " when the corpus was opened: the shard changed during the run");
    reader.read_tokens(local, taken, out);
    out += taken;
    offset += taken;
    count -= taken;
    ++shard;
  }
}

}  // namespace t6
