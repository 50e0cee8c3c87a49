// How decode attention (kernels/ops.h, DecodeRows) cuts a row into pieces of whole blocks: the CPU op
// in blocks of DecodeRows::block_tokens, pieces of at least kMinPieceTokens and at most
// kDecodePartialStates / rows of them; its CUDA twin (one thread block a piece) in its tiles, with
// the limits of kernels/ops.h for a GPU. The cut depends only on the lengths and the row count.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/ops.h"

namespace t6::ops {

// On the CPU a row shorter than this stays in one piece: the merge and a piece's setup would outweigh
// the split.
inline constexpr int64_t kMinPieceTokens = 512;

// The most pieces a row of a call of `rows` rows is cut into: the call's partial states shared out.
inline int64_t decode_max_pieces(int64_t rows, int64_t partial_states = kDecodePartialStates) {
  return std::max<int64_t>(partial_states / rows, 1);
}

// `pieces` pieces of `piece_tokens` positions (a whole number of blocks), the last one shorter.
struct DecodeCut {
  int64_t pieces = 1, piece_tokens = 0;
};
inline DecodeCut decode_cut(int64_t length, int64_t block_tokens, int64_t max_pieces,
                            int64_t min_piece_tokens = kMinPieceTokens) {
  const int64_t wanted = std::clamp<int64_t>((length + min_piece_tokens - 1) / min_piece_tokens, 1, max_pieces);
  const int64_t blocks = (length + block_tokens - 1) / block_tokens;
  const int64_t piece_tokens = (blocks + wanted - 1) / wanted * block_tokens;
  return {(length + piece_tokens - 1) / piece_tokens, piece_tokens};
}

}  // namespace t6::ops
