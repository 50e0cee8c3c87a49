// GPT-2 byte-level BPE, identical to tiktoken's r50k_base: the split pattern of pretokenizer.h, then
// BPE over the bytes of each piece with the ranks of `r50k_base.tiktoken` (lowest rank merged first,
// leftmost on ties). Every byte string encodes (invalid UTF-8 follows the rule in pretokenizer.h)
// and decode(encode(x)) == x. Text that looks like <|endoftext|> is ordinary text here: only the
// preprocessor adds the EOT id, between documents.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace t6 {

// The contract's tokenizer file: gpt-tokenizer 4.0.0's data/r50k_base.tiktoken.
inline constexpr const char* kTokenizerName = "r50k_base";
inline constexpr const char* kTokenizerSha256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930";

// Which tokenizer file to use: `cli_path` when non-empty, else $T6_TOKENIZER, else the path compiled
// in as default_tokenizer_path() (where data_tools/fetch_tokenizer.sh puts it).
std::string resolve_tokenizer_path(const std::string& cli_path);

// Per-thread memo of piece → ids. Encoding is a pure function of the text, so a cache changes only
// the speed; each thread owns one (the tokenizer itself is immutable and shared).
class BpeCache {
 public:
  BpeCache();
  ~BpeCache();
  BpeCache(BpeCache&&) noexcept;
  BpeCache& operator=(BpeCache&&) noexcept;

 private:
  friend class Tokenizer;
  struct Table;
  std::unique_ptr<Table> table_;
};

class Tokenizer {
 public:
  // Loads a .tiktoken file (base64 token, space, rank per line) after checking its SHA-256 against
  // kTokenizerSha256; throws t6::Error naming the file on a mismatch or a malformed line.
  static Tokenizer load(const std::string& path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  std::string name() const { return kTokenizerName; }
  int64_t vocab_size() const;  // mergeable tokens + the EOT token: 50257 for r50k_base
  uint32_t eot_id() const;     // 50256
  const std::string& path() const;

  // Appends the ids of `text` to `ids`.
  void encode(std::string_view text, BpeCache& cache, std::vector<uint32_t>& ids) const;
  std::vector<uint32_t> encode(std::string_view text) const;  // convenience: a fresh cache per call
  // Bytes of the ids; the EOT id decodes to "<|endoftext|>". Throws on an id outside the vocab.
  std::string decode(const uint32_t* ids, size_t count) const;
  std::string decode(const std::vector<uint32_t>& ids) const { return decode(ids.data(), ids.size()); }

 private:
  struct Vocab;
  explicit Tokenizer(std::unique_ptr<Vocab> vocab);
  void encode_piece(std::string_view piece, std::vector<uint32_t>& ids) const;
  std::unique_ptr<Vocab> vocab_;
};

}  // namespace t6
