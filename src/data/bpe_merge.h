// Byte-pair merging of one pre-token, as tiktoken does it: start from single bytes, repeatedly merge
// the adjacent pair whose concatenation has the lowest rank (the leftmost such pair on ties) until no
// pair is in the table; each final part's rank is its token id.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace t6 {

// A byte string prepared for lookups: its first 8 bytes as an integer (zero-padded), which decides
// equality for the short strings most pieces and tokens are without touching their bytes again,
// and a hash, made from that integer when it holds the whole string, else XXH3-64.
struct BpeKey {
  explicit BpeKey(std::string_view key_bytes) : bytes(key_bytes) {
    const size_t head = bytes.size() < 8 ? bytes.size() : 8;
    for (size_t i = 0; i < head; ++i) prefix |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
    hash = bytes.size() <= 8 ? mix(prefix + bytes.size()) : long_hash(bytes);
  }
  // Equal to `other`, whose prefix is `other_prefix` (`other` has the same length).
  bool same_bytes(uint64_t other_prefix, const char* other) const {
    if (other_prefix != prefix) return false;
    // The rest inline, 8 bytes at a time: a memcmp call cost more than the compare of these few bytes.
    const char* mine = bytes.data() + 8;
    other += 8;
    for (size_t left = bytes.size() > 8 ? bytes.size() - 8 : 0; left > 0;) {
      if (left >= 8) {
        uint64_t a, b;
        std::memcpy(&a, mine, 8);
        std::memcpy(&b, other, 8);
        if (a != b) return false;
        mine += 8, other += 8, left -= 8;
      } else {
        if (*mine++ != *other++) return false;
        --left;
      }
    }
    return true;
  }
  std::string_view bytes;
  uint64_t prefix = 0;
  uint64_t hash = 0;

 private:
  static uint64_t mix(uint64_t x) {  // the 64-bit finaliser of MurmurHash3
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
  }
  static uint64_t long_hash(std::string_view bytes);
};

// Token bytes ↔ rank for the mergeable tokens of a .tiktoken file.
class BpeRanks {
 public:
  static constexpr uint32_t kNoRank = UINT32_MAX;

  // Ranks must be added as 0, 1, 2, … (the file's order); the bytes must be new.
  void add(std::string_view bytes, uint32_t rank);
  // Makes lookups valid after the last add (they hold views into the byte arena).
  void finish();
  uint32_t rank(std::string_view bytes) const { return rank(BpeKey(bytes)); }
  // Inline: one or more lookups per piece are the encoder's hot path.
  uint32_t rank(const BpeKey& key) const {
    for (uint64_t slot = key.hash & slot_mask_;; slot = (slot + 1) & slot_mask_) {
      const Slot& candidate = slots_[slot];
      if (candidate.rank == kNoRank) return kNoRank;
      if (candidate.length == key.bytes.size() && key.same_bytes(candidate.prefix, arena_.data() + candidate.offset))
        return candidate.rank;
    }
  }
  void prefetch(const BpeKey& key) const { __builtin_prefetch(&slots_[key.hash & slot_mask_]); }
  // Direct tables for the one- and two-byte strings every merge starts from.
  uint32_t byte_rank(unsigned char byte) const { return byte_ranks_[byte]; }
  uint32_t two_byte_rank(unsigned char first, unsigned char second) const {
    return two_byte_ranks_[size_t(first) | size_t(second) << 8];
  }
  std::string_view bytes(uint32_t rank) const {
    return std::string_view(arena_).substr(offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  // Open addressing, linear probing, load factor ≤ 1/2. A slot holds the key's prefix, length and
  // place in the arena, so a probe touches one slot and, for keys over 8 bytes that match the
  // prefix, the rest of the bytes. A node-based map was 2× slower.
  struct Slot {
    uint64_t prefix;
    uint32_t rank;         // kNoRank: empty
    uint32_t offset : 24;  // of the bytes in arena_ (r50k_base's arena is 0.4 MB)
    uint32_t length : 8;   // its longest token has 128 bytes
  };
  std::string arena_;
  std::vector<size_t> offsets_{0};
  std::vector<Slot> slots_;
  uint64_t slot_mask_ = 0;
  std::vector<uint32_t> byte_ranks_, two_byte_ranks_;  // 256 and 65,536 entries, kNoRank where none
};

// Quadratic in the piece length, fastest for the short pieces that make up ordinary text.
void bpe_merge_scan(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);
// O(n log n) with a heap of candidate pairs; same result. For long pieces (whitespace or symbol
// runs) that would make the scan crawl.
void bpe_merge_heap(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);
// The scan or the heap by length.
void bpe_merge(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);
// A piece that is itself a token, else bpe_merge.
void bpe_encode_piece(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);

}  // namespace t6
