#include "data/pretokenizer.h"

#include <array>
#include <cstdint>

namespace t6 {
namespace {

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> classes{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      classes[c] = CharClass::kLetter;
    else if (c >= '0' && c <= '9')
      classes[c] = CharClass::kNumber;
    else if (c == ' ' || (c >= 0x09 && c <= 0x0D))
      classes[c] = CharClass::kSpace;
    else
      classes[c] = CharClass::kOther;
  }
  return classes;
}
constexpr std::array<CharClass, 128> kAsciiClasses = make_ascii_classes();

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// The code point of a valid multi-byte sequence at `at`, with its length, or length 0 if invalid.
struct MultiByte {
  uint32_t code_point;
  int length;
};
MultiByte decode_multibyte(const unsigned char* at, const unsigned char* end) {
  const unsigned char lead = at[0];
  const ptrdiff_t available = end - at;
  if (lead >= 0xC2 && lead <= 0xDF) {
    if (available >= 2 && is_continuation(at[1])) return {uint32_t(lead & 0x1F) << 6 | (at[1] & 0x3F), 2};
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    if (available >= 3 && is_continuation(at[1]) && is_continuation(at[2])) {
      const uint32_t cp = uint32_t(lead & 0x0F) << 12 | uint32_t(at[1] & 0x3F) << 6 | (at[2] & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    if (available >= 4 && is_continuation(at[1]) && is_continuation(at[2]) && is_continuation(at[3])) {
      const uint32_t cp = uint32_t(lead & 0x07) << 18 | uint32_t(at[1] & 0x3F) << 12 |
                          uint32_t(at[2] & 0x3F) << 6 | (at[3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {0, 0};
}

// decode_char, here where the scanner can inline it (it runs once per non-ASCII character).
inline DecodedChar decode_at(const unsigned char* at, const unsigned char* end) {
  if (*at < 0x80) return {kAsciiClasses[*at], 1};
  const MultiByte multibyte = decode_multibyte(at, end);
  if (multibyte.length == 0) return {CharClass::kOther, 1};
  return {char_class(multibyte.code_point), multibyte.length};
}

// End of the run of characters of class `cls` that starts at `at`.
const unsigned char* run_end(const unsigned char* at, const unsigned char* end, CharClass cls) {
  while (at < end) {
    if (*at < 0x80) {
      if (kAsciiClasses[*at] != cls) break;
      ++at;
    } else {
      const DecodedChar next = decode_at(at, end);
      if (next.cls != cls) break;
      at += next.length;
    }
  }
  return at;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at `at` (which holds an apostrophe), or 0.
size_t contraction_length(const unsigned char* at, const unsigned char* end) {
  if (end - at >= 2 && (at[1] == 's' || at[1] == 't' || at[1] == 'm' || at[1] == 'd')) return 2;
  if (end - at >= 3 && ((at[1] == 'r' && at[2] == 'e') || (at[1] == 'v' && at[2] == 'e') ||
                        (at[1] == 'l' && at[2] == 'l')))
    return 3;
  return 0;
}

}  // namespace

DecodedChar decode_char(const unsigned char* at, const unsigned char* end) { return decode_at(at, end); }

size_t next_pretoken_length(std::string_view text) {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = begin + text.size();
  if (*begin == '\'') {
    if (const size_t length = contraction_length(begin, end)) return length;
  }
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional leading space, then a run of one class.
  const unsigned char* run_start = begin;
  if (*begin == ' ' && end - begin >= 2) run_start = begin + 1;
  const DecodedChar first = decode_at(run_start, end);
  if (first.cls != CharClass::kSpace) return size_t(run_end(run_start + first.length, end, first.cls) - begin);
  const DecodedChar own = decode_at(begin, end);
  if (own.cls != CharClass::kSpace) return size_t(run_end(begin + own.length, end, own.cls) - begin);
  // `\s+(?!\S)|\s+`: a whitespace run; unless it ends the text, its last character is left to start
  // the next piece (so " word" keeps its space), except when the run is that one character.
  const unsigned char* at = begin;
  const unsigned char* last_char = begin;
  while (at < end) {
    const DecodedChar next = decode_at(at, end);
    if (next.cls != CharClass::kSpace) break;
    last_char = at;
    at += next.length;
  }
  if (at == end || last_char == begin) return size_t(at - begin);
  return size_t(last_char - begin);
}

}  // namespace t6
