#include "data/tokenizer.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

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

// Open addressing over the pieces met so far, probed with the BpeKey made once per piece for the
// rank table too. A node-based std::unordered_map here was most of the encoder's time: a pointer
// chase and a re-hash for every node of a bucket visited.
struct BpeCache::Table {
  struct Slot {
    uint64_t prefix;
    uint32_t piece_offset;  // in piece_bytes
    uint32_t ids_offset;    // in ids
    uint8_t piece_length;   // 0: empty (cached pieces have 2 to kMaxCachedPieceBytes bytes)
    uint8_t id_count;
  };
  static constexpr size_t kInitialSlots = size_t(1) << 12;
  std::vector<Slot> slots = std::vector<Slot>(kInitialSlots);
  size_t used = 0;
  std::string piece_bytes;
  std::vector<uint32_t> ids;

  const Slot* find(const BpeKey& key) const {
    const size_t mask = slots.size() - 1;
    for (size_t at = key.hash & mask;; at = (at + 1) & mask) {
      const Slot& slot = slots[at];
      if (slot.piece_length == 0) return nullptr;
      if (slot.piece_length == key.bytes.size() && key.same_bytes(slot.prefix, piece_bytes.data() + slot.piece_offset))
        return &slot;
    }
  }
  void prefetch(const BpeKey& key) const { __builtin_prefetch(&slots[key.hash & (slots.size() - 1)]); }
  void place(const Slot& entry, uint64_t hash) {
    const size_t mask = slots.size() - 1;
    size_t at = hash & mask;
    while (slots[at].piece_length != 0) at = (at + 1) & mask;
    slots[at] = entry;
  }
  void insert(const BpeKey& key, const uint32_t* piece_ids, size_t count) {
    if (2 * (used + 1) > slots.size()) {  // load factor ≤ 1/2 keeps probe runs short
      std::vector<Slot> old(2 * slots.size());
      old.swap(slots);
      for (const Slot& entry : old)
        if (entry.piece_length != 0)
          place(entry, BpeKey(std::string_view(piece_bytes).substr(entry.piece_offset, entry.piece_length)).hash);
    }
    place(Slot{key.prefix, uint32_t(piece_bytes.size()), uint32_t(ids.size()), uint8_t(key.bytes.size()),
               uint8_t(count)},
          key.hash);
    ++used;
    piece_bytes.append(key.bytes);
    ids.insert(ids.end(), piece_ids, piece_ids + count);
  }
  void clear() {
    slots.assign(kInitialSlots, Slot{});
    used = 0;
    piece_bytes.clear();
    ids.clear();
  }
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
  // A cached piece's length and id count must fit a Slot's uint8_t fields.
  constexpr size_t kMaxCachedPieceBytes = 64;
  constexpr size_t kMaxCachedIds = size_t(1) << 23;
  BpeCache::Table& table = *cache.table_;
  const BpeRanks& ranks = vocab_->ranks;
  auto encode_piece = [&](const BpeKey& key) {
    if (const uint32_t whole = ranks.rank(key); whole != BpeRanks::kNoRank) {
      ids.push_back(whole);
      return;
    }
    if (key.bytes.size() > kMaxCachedPieceBytes) {
      bpe_merge(ranks, key.bytes, ids);
      return;
    }
    if (const BpeCache::Table::Slot* found = table.find(key)) {
      const uint32_t* cached = table.ids.data() + found->ids_offset;
      for (uint32_t i = 0; i < found->id_count; ++i) ids.push_back(cached[i]);  // a few ids: no memmove call
      return;
    }
    const size_t first = ids.size();
    bpe_merge(ranks, key.bytes, ids);
    if (table.ids.size() > kMaxCachedIds) table.clear();
    table.insert(key, ids.data() + first, ids.size() - first);
  };
  // One piece ahead: the next piece's table slots are fetched from memory while this one is
  // encoded. The lookups wait on memory (the tables are megabytes), so this hides most of that.
  std::string_view rest = text;
  auto split_next = [&] {
    const BpeKey key(rest.substr(0, next_pretoken_length(rest)));
    rest.remove_prefix(key.bytes.size());
    ranks.prefetch(key);
    table.prefetch(key);
    return key;
  };
  if (rest.empty()) return;
  BpeKey key = split_next();
  while (!rest.empty()) {
    const BpeKey following = split_next();
    encode_piece(key);
    key = following;
  }
  encode_piece(key);
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
