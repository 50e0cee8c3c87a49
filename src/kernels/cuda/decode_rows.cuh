// The rows of a decode op (kernels/ops.h, DecodeRows) as its kernels take them: the slots and lengths
// live in host memory, so each launch gets up to kChunkRows rows by value, as a kernel parameter,
// with each row's cut into pieces (kernels/decode_pieces.h, in the device's tiles). Nothing is copied
// to the device and nothing is allocated. A call of more rows launches once per chunk; row n of the
// call keeps its pieces' partial states at n · max_pieces + piece whichever chunk it is in.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/decode_pieces.h"
#include "kernels/ops.h"

namespace t6::ops::cuda {

constexpr int kChunkRows = 64;

struct DecodeRowChunk {
  int count = 0;       // rows in this chunk
  int first = 0;       // the call's index of its first row
  int max_pieces = 1;  // of the call: row r's pieces have partial states (first + r) · max_pieces + piece
  int slot[kChunkRows], length[kChunkRows];
  int pieces[kChunkRows], piece_tokens[kChunkRows];
};

// Calls launch(chunk) for each chunk of the rows, in order, each row cut into at most max_pieces
// pieces of whole kDeviceDecodeTileTokens tiles of at least kDeviceMinPieceTokens; max_pieces 1 cuts
// no row.
template <class Launch>
void for_row_chunks(const DecodeRows& rows, int64_t max_pieces, Launch&& launch) {
  const int64_t N = rows.length.numel();
  const int64_t* slots = rows.slot.data<int64_t>();
  const int64_t* lengths = rows.length.data<int64_t>();
  DecodeRowChunk chunk;
  chunk.max_pieces = int(max_pieces);
  for (int64_t first = 0; first < N; first += kChunkRows) {
    chunk.first = int(first);
    chunk.count = int(std::min<int64_t>(kChunkRows, N - first));
    for (int r = 0; r < chunk.count; ++r) {
      const DecodeCut cut = decode_cut(lengths[first + r], kDeviceDecodeTileTokens, max_pieces, kDeviceMinPieceTokens);
      chunk.slot[r] = int(slots[first + r]), chunk.length[r] = int(lengths[first + r]);
      chunk.pieces[r] = int(cut.pieces), chunk.piece_tokens[r] = int(cut.piece_tokens);
    }
    launch(chunk);
  }
}

}  // namespace t6::ops::cuda
