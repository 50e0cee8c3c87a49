#include "data/corpus_writer.h"

#include <cmath>

#include "core/error.h"
#include "data/corpus_index.h"
#include "data/shard_format.h"

namespace t6 {
namespace {

ShardSpec split_spec(const CorpusIdentity& identity, const std::string& split, int gzip_level) {
  return ShardSpec{identity.tokenizer, identity.vocab_size, identity.eot_id, split, gzip_level,
                   identity.tokenizer_sha256, identity.unicode_version};
}

}  // namespace

bool document_goes_to_val(uint64_t document, double val_fraction, int64_t val_documents) {
  if (val_documents > 0) return document < uint64_t(val_documents);
  return std::ceil(double(document + 1) * val_fraction) > std::ceil(double(document) * val_fraction);
}

CorpusWriter::CorpusWriter(const std::string& directory, const CorpusIdentity& identity, uint64_t shard_tokens,
                           int gzip_level)
    : directory_(directory), identity_(identity),
      train_(directory, split_spec(identity, "train", gzip_level), shard_tokens),
      val_(directory, split_spec(identity, "val", gzip_level), shard_tokens) {}

void CorpusWriter::begin_document(const std::string& source_file, bool to_val) {
  current_ = to_val ? &val_ : &train_;
  current_counts_ = to_val ? &val_counts_ : &train_counts_;
  current_->begin_document(source_file);
  ++current_counts_->documents;
}

void CorpusWriter::append(const uint32_t* ids, size_t count) {
  T6_ASSERT(current_ != nullptr);
  current_->append(ids, count);
  current_counts_->tokens += count;
}

void CorpusWriter::add_source(const std::string& source_file) {
  T6_ASSERT(current_ != nullptr);
  current_->add_source(source_file);
}

void CorpusWriter::check_splits(const std::string& inputs, bool val_requested) const {
  const uint64_t documents = train_counts_.documents + val_counts_.documents;
  T6_CHECK(train_counts_.documents > 0, inputs, ": the train split would be empty (", documents, " documents, ",
           val_counts_.documents, " of them for val)");
  T6_CHECK(!val_requested || val_counts_.documents > 0, inputs, ": the val split would be empty");
}

uint64_t CorpusWriter::finish(const std::vector<std::string>& sources) {
  CorpusIndex index;
  index.format_version = shard_format::kFormatVersion;
  index.tokenizer = identity_.tokenizer;
  index.tokenizer_sha256 = identity_.tokenizer_sha256;
  index.unicode_version = identity_.unicode_version;
  index.vocab_size = identity_.vocab_size;
  index.eot_id = identity_.eot_id;
  index.token_dtype = shard_format::token_bytes_for_vocab(index.vocab_size) == 2 ? "uint16" : "uint32";
  index.shards = train_.finish();
  for (ShardSummary& shard : val_.finish()) index.shards.push_back(std::move(shard));
  index.sources = sources;
  write_corpus_index(directory_, index);
  return index.shards.size();
}

}  // namespace t6
