// The token shard file (see "Token shards (HDF5)" in DESIGN.md): names, attribute keys and layout
// constants shared by the writer, the reader and the verifier.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace t6::shard_format {

// Version 2 added the tokenizer file's SHA-256 and the Unicode version of the pre-tokeniser.
inline constexpr int64_t kFormatVersion = 2;

inline constexpr const char* kTokensDataset = "tokens";           // 1-D uint16 or uint32
inline constexpr const char* kDocOffsetsDataset = "doc_offsets";  // 1-D uint64, local to the shard

inline constexpr const char* kFormatVersionAttribute = "format_version";
inline constexpr const char* kTokenizerAttribute = "tokenizer";
inline constexpr const char* kTokenizerSha256Attribute = "tokenizer_sha256";
inline constexpr const char* kUnicodeVersionAttribute = "unicode_version";
inline constexpr const char* kVocabSizeAttribute = "vocab_size";
inline constexpr const char* kEotIdAttribute = "eot_id";
inline constexpr const char* kSplitAttribute = "split";
inline constexpr const char* kTokenCountAttribute = "token_count";
inline constexpr const char* kDocumentCountAttribute = "document_count";
inline constexpr const char* kChecksumAttribute = "tokens_xxh3_64";  // hex, over the stored little-endian values
inline constexpr const char* kSourceFilesAttribute = "source_files";

// Random windows of ~1–8k tokens read whole chunks (Fletcher32 is per chunk), so chunks stay small.
inline constexpr uint64_t kTokensPerChunk = 16384;
inline constexpr uint64_t kDocOffsetsPerChunk = 4096;

// uint16 holds every id of a vocab of at most 65535 tokens (DESIGN.md: uint32 above that).
inline int token_bytes_for_vocab(int64_t vocab_size) { return vocab_size <= 65535 ? 2 : 4; }

// "train_00003.h5"
std::string shard_file_name(const std::string& split, int64_t shard_number);

// What a shard's attributes say about it.
struct ShardAttributes {
  int64_t format_version = 0;
  std::string tokenizer;
  std::string tokenizer_sha256;
  std::string unicode_version;
  int64_t vocab_size = 0;
  int64_t eot_id = 0;
  std::string split;
  uint64_t token_count = 0;
  uint64_t document_count = 0;
  std::string checksum;  // 16 hex digits of XXH3-64
  std::vector<std::string> source_files;
};

// XXH3-64 of token bytes as 16 lower-case hex digits.
std::string checksum_hex(uint64_t hash);

}  // namespace t6::shard_format
