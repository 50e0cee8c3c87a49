// GPT-2 pre-tokenisation: splits text into the pieces that BPE then encodes one by one. It is the
// split pattern of tiktoken's r50k_base,
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out as a hand-made scanner (leftmost alternative wins, greedy runs, the look-ahead gives a
// whitespace run's last character to the next piece). tests/test_tiktoken_reference.cpp checks it against
// the real tiktoken on generated text and on every code point.
//
// Invalid UTF-8 rule: text is read as UTF-8 code points; a byte that does not start a valid
// (shortest-form, non-surrogate, ≤ U+10FFFF) sequence is taken as a one-byte character of class
// "other" (neither letter, number nor space), so it joins a punctuation run like any symbol would.
// Valid text therefore splits exactly as tiktoken splits it, every byte string splits somehow, and
// the pieces always concatenate back to the input.
#pragma once
#include <cstddef>
#include <string_view>

#include "data/unicode_classes.h"

namespace t6 {

struct DecodedChar {
  CharClass cls;
  int length;  // bytes
};

// The character at the start of [at, end) (at < end), under the invalid UTF-8 rule above.
DecodedChar decode_char(const unsigned char* at, const unsigned char* end);

// Length in bytes of the piece that starts at text[0] (text non-empty).
size_t next_pretoken_length(std::string_view text);

// Calls on_piece(std::string_view) for every piece of `text`, in order.
template <class OnPiece>
void for_each_pretoken(std::string_view text, OnPiece&& on_piece) {
  while (!text.empty()) {
    const size_t length = next_pretoken_length(text);
    on_piece(text.substr(0, length));
    text.remove_prefix(length);
  }
}

}  // namespace t6
