#include "infer/utf8_stream.h"

namespace t6::infer {

namespace {
// Length of the character a lead byte starts (2-4), or 0 for ASCII, a continuation or an invalid byte.
size_t sequence_length(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}
bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }
}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  // Find the last lead byte within the final 3 bytes; hold it back if its character is incomplete
  // and every byte after it is a continuation.
  const size_t size = pending_.size();
  size_t keep_from = size;
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const unsigned char byte = static_cast<unsigned char>(pending_[size - back]);
    if (is_continuation(byte)) continue;
    const size_t length = sequence_length(byte);
    if (length > back) keep_from = size - back;
    break;
  }
  std::string ready = pending_.substr(0, keep_from);
  pending_.erase(0, keep_from);
  return ready;
}

std::string Utf8Stream::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace t6::infer
