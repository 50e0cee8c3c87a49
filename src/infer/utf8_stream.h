// Streaming decoded bytes without splitting a UTF-8 character: tokens are byte strings, and one
// character may span tokens. push() returns the bytes that are safe to print now (everything up to
// an incomplete trailing character, which is held back); finish() returns what is left. Bytes that
// cannot be part of a valid character are passed through at once, never held.
#pragma once
#include <string>
#include <string_view>

namespace t6::infer {

class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string finish();

 private:
  std::string pending_;
};

}  // namespace t6::infer
