#include "data/bpe_merge.h"

#include <xxhash.h>

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
  slots_.assign(slot_count, Slot{0, kNoRank});
  slot_mask_ = slot_count - 1;
  for (uint32_t rank = 0; rank < size(); ++rank) {
    const uint64_t hash = XXH3_64bits(bytes(rank).data(), bytes(rank).size());
    uint64_t slot = hash & slot_mask_;
    while (slots_[slot].rank != kNoRank) slot = (slot + 1) & slot_mask_;
    slots_[slot] = Slot{uint32_t(hash >> 32), rank};
  }
}

uint32_t BpeRanks::rank(std::string_view key) const {
  const uint64_t hash = XXH3_64bits(key.data(), key.size());
  const uint32_t tag = uint32_t(hash >> 32);
  for (uint64_t slot = hash & slot_mask_;; slot = (slot + 1) & slot_mask_) {
    const Slot& candidate = slots_[slot];
    if (candidate.rank == kNoRank) return kNoRank;
    if (candidate.tag == tag && bytes(candidate.rank) == key) return candidate.rank;
  }
}

void bpe_merge_scan(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  // parts[i] = start of part i; pair_rank[i] = rank of part i joined with part i+1. A sentinel part
  // at the end makes "the bytes up to the part after next" uniform.
  struct Part {
    size_t start;
    uint32_t pair_rank;
  };
  std::vector<Part> parts;
  parts.reserve(piece.size() + 1);
  for (size_t i = 0; i <= piece.size(); ++i) parts.push_back({i, BpeRanks::kNoRank});
  auto rank_of_pair = [&](size_t i) {
    if (i + 2 >= parts.size()) return BpeRanks::kNoRank;
    return ranks.rank(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  for (size_t i = 0; i + 2 < parts.size(); ++i) parts[i].pair_rank = rank_of_pair(i);
  while (parts.size() > 2) {
    size_t best = 0;
    uint32_t best_rank = BpeRanks::kNoRank;
    for (size_t i = 0; i + 2 < parts.size(); ++i) {
      if (parts[i].pair_rank < best_rank) {
        best_rank = parts[i].pair_rank;
        best = i;
      }
    }
    if (best_rank == BpeRanks::kNoRank) break;
    parts.erase(parts.begin() + ptrdiff_t(best) + 1);
    parts[best].pair_rank = rank_of_pair(best);
    if (best > 0) parts[best - 1].pair_rank = rank_of_pair(best - 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i)
    ids.push_back(ranks.rank(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
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

void bpe_encode_piece(const BpeRanks& ranks, std::string_view piece, std::vector<uint32_t>& ids) {
  if (const uint32_t whole = ranks.rank(piece); whole != BpeRanks::kNoRank) {
    ids.push_back(whole);
    return;
  }
  constexpr size_t kLongPiece = 128;  // above this the scan's quadratic cost dominates
  if (piece.size() <= kLongPiece)
    bpe_merge_scan(ranks, piece, ids);
  else
    bpe_merge_heap(ranks, piece, ids);
}

}  // namespace t6
