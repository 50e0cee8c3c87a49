// Byte-pair merging of one pre-token, as tiktoken does it: start from single bytes, repeatedly merge
// the adjacent pair whose concatenation has the lowest rank (the leftmost such pair on ties) until no
// pair is in the table; each final part's rank is its token id.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t6 {

// Token bytes ↔ rank for the mergeable tokens of a .tiktoken file.
class BpeRanks {
 public:
  static constexpr uint32_t kNoRank = UINT32_MAX;

  // Ranks must be added as 0, 1, 2, … (the file's order); the bytes must be new.
  void add(std::string_view bytes, uint32_t rank);
  // Makes lookups valid after the last add (they hold views into the byte arena).
  void finish();
  uint32_t rank(std::string_view bytes) const;
  std::string_view bytes(uint32_t rank) const {
    return std::string_view(arena_).substr(offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  // Open addressing, linear probing: each slot holds the upper 32 bits of the key's hash and its
  // rank, so most probes touch one cache line and compare bytes only on a tag match. Lookups are
  // the encoder's hot path (one per piece, more per merge step); a node-based map was 2× slower.
  struct Slot {
    uint32_t tag;
    uint32_t rank;  // kNoRank: empty
  };
  std::string arena_;
  std::vector<size_t> offsets_{0};
  std::vector<Slot> slots_;
  uint64_t slot_mask_ = 0;
};

// Quadratic in the piece length, fastest for the short pieces that make up ordinary text.
void bpe_merge_scan(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);
// O(n log n) with a heap of candidate pairs; same result. For long pieces (whitespace or symbol
// runs) that would make the scan crawl.
void bpe_merge_heap(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);
// A piece that is itself a token, else the scan or the heap by length.
void bpe_encode_piece(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids);

}  // namespace t6
