#include "data/bpe_merge.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <queue>

#include "core/error.h"

namespace t6 {

void BpeRanks::add(std::string_view bytes, uint32_t rank) {
  T6_ASSERT(rank == size());
  arena_.append(bytes);
  offsets_.push_back(arena_.size());
}

void BpeRanks::finish() {
  size_t slot_count = 1024;
  while (slot_count < 2 * size()) slot_count *= 2;  // load factor ≤ 1/2 keeps probe runs short
  slots_.assign(slot_count, Slot{0, kNoRank, 0, 0});
  slot_mask_ = slot_count - 1;
  byte_ranks_.assign(256, kNoRank);
  two_byte_ranks_.assign(size_t(1) << 16, kNoRank);
  for (uint32_t rank = 0; rank < size(); ++rank) {
    const BpeKey key(bytes(rank));
    T6_CHECK(key.bytes.size() < (1u << 8) && offsets_[rank] < (1u << 24), "token ", rank, " (", key.bytes.size(),
             " bytes at ", offsets_[rank], ") does not fit the rank table's slots");
    uint64_t slot = key.hash & slot_mask_;
    while (slots_[slot].rank != kNoRank) slot = (slot + 1) & slot_mask_;
    slots_[slot] = Slot{key.prefix, rank, uint32_t(offsets_[rank]), uint32_t(key.bytes.size())};
    if (key.bytes.size() == 1) byte_ranks_[key.prefix] = rank;
    if (key.bytes.size() == 2) two_byte_ranks_[key.prefix] = rank;
  }
}

uint64_t BpeKey::long_hash(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

void bpe_merge_scan(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  // parts[i]: where part i starts, its rank (a part is always a token), and the rank of part i
  // joined with part i+1. A sentinel part at the end makes "the bytes up to the part after next"
  // uniform.
  struct Part {
    size_t start;
    uint32_t rank, pair_rank;
  };
  // Pieces of ordinary text fit the stack buffer, so a merge allocates nothing.
  constexpr size_t kStackParts = 130;
  Part stack_parts[kStackParts];
  std::vector<Part> heap_parts;
  size_t count = piece.size() + 1;
  Part* parts = count <= kStackParts ? stack_parts : (heap_parts.resize(count), heap_parts.data());
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  for (size_t i = 0; i + 1 < count; ++i) {
    const uint32_t pair = i + 2 < count ? ranks.two_byte_rank(bytes[i], bytes[i + 1]) : BpeRanks::kNoRank;
    parts[i] = {i, ranks.byte_rank(bytes[i]), pair};
  }
  parts[count - 1] = {piece.size(), BpeRanks::kNoRank, BpeRanks::kNoRank};
  auto pair_key = [&](size_t i) { return BpeKey(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start)); };
  while (count > 2) {
    size_t best = 0;
    uint32_t best_rank = BpeRanks::kNoRank;
    for (size_t i = 0; i + 2 < count; ++i) {
      if (parts[i].pair_rank < best_rank) {
        best_rank = parts[i].pair_rank;
        best = i;
      }
    }
    if (best_rank == BpeRanks::kNoRank) break;
    std::copy(parts + best + 2, parts + count, parts + best + 1);
    --count;
    parts[best].rank = best_rank;
    // The two pairs that changed, both fetched from memory before either is compared.
    const bool right = best + 2 < count, left = best > 0;
    const BpeKey right_key = right ? pair_key(best) : BpeKey({}), left_key = left ? pair_key(best - 1) : BpeKey({});
    if (right) ranks.prefetch(right_key);
    if (left) ranks.prefetch(left_key);
    parts[best].pair_rank = right ? ranks.rank(right_key) : BpeRanks::kNoRank;
    if (left) parts[best - 1].pair_rank = ranks.rank(left_key);
  }
  for (size_t i = 0; i + 1 < count; ++i) ids.push_back(parts[i].rank);
}

void bpe_merge_heap(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  // A doubly linked list of parts; a part's `version` changes whenever it grows or disappears, so a
  // heap entry naming an old version is stale and skipped.
  struct Part {
    size_t start, end;
    size_t prev, next;  // indices; kNone at the ends
    uint32_t version;
    bool alive;
  };
  constexpr size_t kNone = SIZE_MAX;
  struct Candidate {
    uint32_t rank;
    size_t left;  // part index == its start byte, so ordering by it is "leftmost"
    uint32_t left_version, right_version;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  const size_t n = piece.size();
  std::vector<Part> parts(n);
  for (size_t i = 0; i < n; ++i) parts[i] = {i, i + 1, i == 0 ? kNone : i - 1, i + 1 == n ? kNone : i + 1, 0, true};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](size_t left) {
    const size_t right = parts[left].next;
    if (right == kNone) return;
    const uint32_t rank = ranks.rank(piece.substr(parts[left].start, parts[right].end - parts[left].start));
    if (rank != BpeRanks::kNoRank) heap.push({rank, left, parts[left].version, parts[right].version});
  };
  for (size_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Part& left = parts[top.left];
    if (!left.alive || left.version != top.left_version || left.next == kNone) continue;
    Part& right = parts[left.next];
    if (right.version != top.right_version) continue;
    left.end = right.end;
    left.next = right.next;
    ++left.version;
    right.alive = false;
    ++right.version;
    if (left.next != kNone) parts[left.next].prev = top.left;
    push_pair(top.left);
    // The pair (prev, left) with the old, shorter `left` is already stale: left's version moved.
    if (left.prev != kNone) push_pair(left.prev);
  }
  for (size_t i = 0; i != kNone && i < n; i = parts[i].next)
    ids.push_back(ranks.rank(piece.substr(parts[i].start, parts[i].end - parts[i].start)));
}

void bpe_merge(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  constexpr size_t kLongPiece = 128;  // above this the scan's quadratic cost dominates
  if (piece.size() <= kLongPiece)
    bpe_merge_scan(ranks, piece, ids);
  else
    bpe_merge_heap(ranks, piece, ids);
}

void bpe_encode_piece(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  if (const uint32_t whole = ranks.rank(piece); whole != BpeRanks::kNoRank) {
    ids.push_back(whole);
    return;
  }
  bpe_merge(ranks, piece, ids);
}

}  // namespace t6
