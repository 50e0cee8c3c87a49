#include "data/tokenizer.h"

#include <xxhash.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/build_paths.h"
#include "core/error.h"
#include "data/bpe_merge.h"
#include "data/pretokenizer.h"
#include "data/sha256.h"

namespace t6 {
namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with '=' padding; returns false on any other character or a bad length.
bool decode_base64(std::string_view text, std::string& bytes) {
  bytes.clear();
  if (text.size() % 4 != 0) return false;
  uint32_t accumulator = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=') {
      if (i + 2 < text.size()) return false;
      continue;
    }
    const int value = base64_value(text[i]);
    if (value < 0) return false;
    accumulator = accumulator << 6 | uint32_t(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += char((accumulator >> bits) & 0xFF);
    }
  }
  return true;
}

}  // namespace

std::string resolve_tokenizer_path(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* from_environment = std::getenv("T6_TOKENIZER"); from_environment && *from_environment)
    return from_environment;
  return default_tokenizer_path().string();
}

struct Tokenizer::Vocab {
  std::string path;
  BpeRanks ranks;
};

// Heterogeneous lookup (by string_view) so that a cache hit allocates nothing.
struct BpeCache::Table {
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view piece) const noexcept { return size_t(XXH3_64bits(piece.data(), piece.size())); }
  };
  struct Span {
    uint32_t offset, count;
  };
  std::unordered_map<std::string, Span, PieceHash, std::equal_to<>> span_of_piece;
  std::vector<uint32_t> ids;
};

BpeCache::BpeCache() : table_(std::make_unique<Table>()) {}
BpeCache::~BpeCache() = default;
BpeCache::BpeCache(BpeCache&&) noexcept = default;
BpeCache& BpeCache::operator=(BpeCache&&) noexcept = default;

Tokenizer::Tokenizer(std::unique_ptr<Vocab> vocab) : vocab_(std::move(vocab)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  T6_CHECK(file, path, ": cannot open the tokenizer file (run data_tools/fetch_tokenizer.sh, or pass --tokenizer",
           " or set T6_TOKENIZER)");
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string text = contents.str();
  const std::string digest = sha256_hex(text);
  T6_CHECK(digest == kTokenizerSha256, path, ": SHA-256 ", digest, " is not that of gpt-tokenizer 4.0.0's ",
           kTokenizerName, ".tiktoken (", kTokenizerSha256, ")");

  auto vocab = std::make_unique<Vocab>();
  vocab->path = path;
  std::istringstream lines(text);
  std::string line, token_bytes;
  int64_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    T6_CHECK(space != std::string::npos, path, ":", line_number, ": expected '<base64> <rank>'");
    T6_CHECK(decode_base64(std::string_view(line).substr(0, space), token_bytes), path, ":", line_number,
             ": bad base64");
    const uint32_t expected_rank = uint32_t(vocab->ranks.size());
    T6_CHECK(line.substr(space + 1) == std::to_string(expected_rank), path, ":", line_number, ": rank ",
             line.substr(space + 1), " where ", expected_rank, " was expected");
    vocab->ranks.add(token_bytes, expected_rank);
  }
  vocab->ranks.finish();
  return Tokenizer(std::move(vocab));
}

int64_t Tokenizer::vocab_size() const { return int64_t(vocab_->ranks.size()) + 1; }
uint32_t Tokenizer::eot_id() const { return uint32_t(vocab_->ranks.size()); }
const std::string& Tokenizer::path() const { return vocab_->path; }

void Tokenizer::encode(std::string_view text, BpeCache& cache, std::vector<uint32_t>& ids) const {
  // Bounds keep a cache from growing without limit on a huge corpus; clearing changes only speed.
  constexpr size_t kMaxCachedPieceBytes = 64;
  constexpr size_t kMaxCachedIds = size_t(1) << 23;
  BpeCache::Table& table = *cache.table_;
  const BpeRanks& ranks = vocab_->ranks;
  for_each_pretoken(text, [&](std::string_view piece) {
    if (const uint32_t whole = ranks.rank(piece); whole != BpeRanks::kNoRank) {
      ids.push_back(whole);
      return;
    }
    if (piece.size() > kMaxCachedPieceBytes) {
      bpe_encode_piece(ranks, piece, ids);
      return;
    }
    if (const auto found = table.span_of_piece.find(piece); found != table.span_of_piece.end()) {
      ids.insert(ids.end(), table.ids.begin() + found->second.offset,
                 table.ids.begin() + found->second.offset + found->second.count);
      return;
    }
    const size_t first = ids.size();
    bpe_encode_piece(ranks, piece, ids);
    if (table.ids.size() > kMaxCachedIds) {
      table.ids.clear();
      table.span_of_piece.clear();
    }
    table.span_of_piece.emplace(std::string(piece),
                                BpeCache::Table::Span{uint32_t(table.ids.size()), uint32_t(ids.size() - first)});
    table.ids.insert(table.ids.end(), ids.begin() + ptrdiff_t(first), ids.end());
  });
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text) const {
  BpeCache cache;
  std::vector<uint32_t> ids;
  encode(text, cache, ids);
  return ids;
}

std::string Tokenizer::decode(const uint32_t* ids, size_t count) const {
  std::string bytes;
  for (size_t i = 0; i < count; ++i) {
    if (ids[i] == eot_id()) {
      bytes += kEndOfText;
      continue;
    }
    T6_CHECK(ids[i] < vocab_->ranks.size(), "token id ", ids[i], " is outside the ", kTokenizerName,
             " vocabulary (size ", vocab_size(), ")");
    bytes += vocab_->ranks.bytes(ids[i]);
  }
  return bytes;
}

}  // namespace t6
