// The fixtures' rule for weights after optimizer steps (tests/fixtures/README.md, `after.`): all but
// max(1, 0.1%) of a tensor's elements within 1e-5 of the reference, and every element within
// `max_error`. Adam divides each gradient by its own magnitude, so an element whose gradient is
// within rounding of zero may legitimately step differently; every real bug moves most elements.
#pragma once
#include <cstdint>
#include <string>

namespace t6::testing {

void expect_weights_match(const std::string& name, const float* actual, const float* expected, int64_t count,
                          double max_error);

}  // namespace t6::testing
