#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/unicode_classes.h"

#include <pcre2.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace t6 {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

namespace {

constexpr uint32_t kCodePointCount = 0x110000;

// Marks every code point that PCRE2 matches with `property` (e.g. \p{L}) as `cls`. One scan over a
// string of all scalar values, one match per run, so building the table takes milliseconds.
void mark_property(const char* property, CharClass cls, const std::string& all_code_points,
                   const std::vector<uint32_t>& code_point_at_offset, std::vector<CharClass>& table) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* pattern = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(property), PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF, &error_code, &error_offset, nullptr);
  T6_ASSERT(pattern != nullptr);
  pcre2_jit_compile(pattern, PCRE2_JIT_COMPLETE);
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(pattern, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(all_code_points.data());
  PCRE2_SIZE offset = 0;
  while (pcre2_match(pattern, subject, all_code_points.size(), offset, PCRE2_NO_UTF_CHECK, match, nullptr) > 0) {
    const PCRE2_SIZE* bounds = pcre2_get_ovector_pointer(match);
    for (PCRE2_SIZE at = bounds[0]; at < bounds[1]; ++at)
      if (code_point_at_offset[at] != UINT32_MAX) table[code_point_at_offset[at]] = cls;
    offset = bounds[1];
  }
  pcre2_match_data_free(match);
  pcre2_code_free(pattern);
}

std::vector<CharClass> build_table() {
  std::vector<CharClass> table(kCodePointCount, CharClass::kOther);
  std::string all_code_points;
  std::vector<uint32_t> code_point_at_offset;  // the code point that starts at each byte, or UINT32_MAX
  all_code_points.reserve(4 * kCodePointCount);
  code_point_at_offset.reserve(4 * kCodePointCount);
  for (uint32_t cp = 0; cp < kCodePointCount; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // surrogates are not scalar values
    append_utf8(all_code_points, cp);
    code_point_at_offset.push_back(cp);
    code_point_at_offset.resize(all_code_points.size(), UINT32_MAX);
  }
  mark_property("\\p{L}+", CharClass::kLetter, all_code_points, code_point_at_offset, table);
  mark_property("\\p{N}+", CharClass::kNumber, all_code_points, code_point_at_offset, table);
  // Unicode White_Space (PropList.txt): tiktoken's \s. JavaScript's \s differs at U+0085 and U+FEFF.
  for (uint32_t cp = 0x09; cp <= 0x0D; ++cp) table[cp] = CharClass::kSpace;
  for (uint32_t cp = 0x2000; cp <= 0x200A; ++cp) table[cp] = CharClass::kSpace;
  for (uint32_t cp : {0x20u, 0x85u, 0xA0u, 0x1680u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
    table[cp] = CharClass::kSpace;
  return table;
}

}  // namespace

const CharClass* char_class_table() {
  static const std::vector<CharClass> table = build_table();
  return table.data();
}

CharClass char_class(uint32_t code_point) { return char_class_table()[code_point]; }

}  // namespace t6
