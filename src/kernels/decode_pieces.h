// How decode attention (kernels/ops.h, DecodeRows) cuts a row into pieces of whole blocks, shared by
// the CPU op and its CUDA twin so that both merge the same partial softmax states: the cut depends
// only on the row's length, the block size and the call's row count.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/ops.h"

namespace t6::ops {

// A row shorter than this stays in one piece: the merge and a piece's setup would outweigh the split.
inline constexpr int64_t kMinPieceTokens = 512;

// The most pieces a row of a call of `rows` rows is cut into: the call's partial states shared out.
inline int64_t decode_max_pieces(int64_t rows) { return std::max<int64_t>(kDecodePartialStates / rows, 1); }

// `pieces` pieces of `piece_tokens` positions (a whole number of blocks), the last one shorter.
struct DecodeCut {
  int64_t pieces = 1, piece_tokens = 0;
};
inline DecodeCut decode_cut(int64_t length, int64_t block_tokens, int64_t max_pieces) {
  const int64_t wanted = std::clamp<int64_t>((length + kMinPieceTokens - 1) / kMinPieceTokens, 1, max_pieces);
  const int64_t blocks = (length + block_tokens - 1) / block_tokens;
  const int64_t piece_tokens = (blocks + wanted - 1) / wanted * block_tokens;
  return {(length + piece_tokens - 1) / piece_tokens, piece_tokens};
}

}  // namespace t6::ops
