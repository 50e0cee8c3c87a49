// Errors: one exception type whose message names the file, key or rank at fault, plus check
// macros. Mains catch t6::Error, print its message on one line and exit non-zero (see apps/).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace t6 {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything streamable into one string: str("layer ", i, " has ", n, " heads").
template <class... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

}  // namespace t6

// User-facing check: the message is all the user sees, so it must say what is wrong and where.
#define T6_CHECK(condition, ...)                    \
  do {                                              \
    if (!(condition)) ::t6::fail(::t6::str(__VA_ARGS__)); \
  } while (0)

// Internal invariant: a failure is a bug in t6, so the source location is what helps.
#define T6_ASSERT(condition)                                                            \
  do {                                                                                  \
    if (!(condition))                                                                   \
      ::t6::fail(::t6::str("internal error: ", #condition, " (", __FILE__, ":", __LINE__, ")")); \
  } while (0)
