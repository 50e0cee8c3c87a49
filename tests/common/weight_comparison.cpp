#include "common/weight_comparison.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace t6::testing {

void expect_weights_match(const std::string& name, const float* actual, const float* expected, int64_t count,
                          double max_error) {
  int64_t far = 0;
  double worst = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double error = std::fabs(double(actual[i]) - double(expected[i]));
    far += error > 1e-5;
    worst = std::max(worst, std::isnan(error) ? INFINITY : error);
  }
  EXPECT_LE(far, std::max<int64_t>(1, count / 1000)) << name << ": elements off by more than 1e-5";
  EXPECT_LE(worst, max_error) << name << ": worst element";
}

}  // namespace t6::testing
