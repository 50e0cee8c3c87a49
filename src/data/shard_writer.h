// Writes token shards: ShardWriter fills one file; SplitWriter rolls a split's token stream over
// consecutive files of at most `shard_tokens` tokens (documents may straddle two files).
// HDF5 calls depend only on the token stream, never on timing, so equal input gives equal bytes.
// A shard is built in memory (at most `shard_tokens` tokens: 200 MB at the default 100M) and written
// to disk, fsynced, by finish(), so a full disk is one clear error and never a half-written HDF5
// file. Test hook: T6_SHARD_DISK_FULL=1 makes every shard write fail as on a full disk (ENOSPC).
#pragma once
#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/hdf5_util.h"

namespace t6 {

struct ShardSpec {
  std::string tokenizer;  // e.g. "r50k_base"
  int64_t vocab_size = 0;
  uint32_t eot_id = 0;
  std::string split;        // "train" or "val"
  int gzip_level = 0;       // 0: no compression
  std::string tokenizer_sha256;  // of the tokenizer file
  std::string unicode_version;   // of the pre-tokeniser's character classes, e.g. "16.0.0"
};

// What one finished shard holds (what index.json records about it).
struct ShardSummary {
  std::string file;  // name inside the corpus directory
  std::string split;
  uint64_t tokens = 0;
  uint64_t documents = 0;
  std::string checksum;
};

class Hdf5Image;

class ShardWriter {
 public:
  ShardWriter(const std::string& path, const ShardSpec& spec);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void append(const uint32_t* ids, size_t count);
  void mark_document_start() { doc_offsets_.push_back(token_count_); }
  void add_source(const std::string& source_file);  // ignored if it is already the last one added
  uint64_t token_count() const { return token_count_; }
  // Writes the remaining tokens, doc_offsets and the attributes, and closes the file.
  ShardSummary finish();

 private:
  void flush_tokens();
  std::string path_;
  ShardSpec spec_;
  int token_bytes_;
  std::unique_ptr<Hdf5Image> image_;
  Hdf5Handle tokens_;  // closed before image_
  std::vector<unsigned char> pending_;  // encoded tokens not yet written, at most one chunk
  uint64_t token_count_ = 0, written_tokens_ = 0;
  std::vector<uint64_t> doc_offsets_;
  std::vector<std::string> source_files_;
  XXH3_state_t* checksum_state_ = nullptr;
};

class SplitWriter {
 public:
  SplitWriter(std::string directory, ShardSpec spec, uint64_t shard_tokens);
  void begin_document(const std::string& source_file);
  void add_source(const std::string& source_file);  // the open document continues from this file
  void append(const uint32_t* ids, size_t count);
  std::vector<ShardSummary> finish();

 private:
  void open_next_shard();
  std::string directory_;
  ShardSpec spec_;
  uint64_t shard_tokens_;
  std::string current_source_;
  std::unique_ptr<ShardWriter> shard_;
  std::vector<ShardSummary> finished_;
};

}  // namespace t6
