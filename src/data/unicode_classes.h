// The character classes the GPT-2 split pattern distinguishes: \p{L}, \p{N}, \s, and everything else.
// Letters and numbers come from PCRE2's Unicode tables (the well-kept engine the issue names);
// whitespace is the Unicode White_Space property, which is what tiktoken's regex engine calls \s.
#pragma once
#include <cstdint>
#include <string>

namespace t6 {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

// Class of a Unicode scalar value (0 ≤ code_point ≤ 0x10FFFF). Thread-safe; the table is built once.
CharClass char_class(uint32_t code_point);

// Appends the UTF-8 encoding of a Unicode scalar value.
void append_utf8(std::string& out, uint32_t code_point);

// The whole table, 0x110000 entries, for hot loops that cannot afford a call per character.
const CharClass* char_class_table();

}  // namespace t6
