#include "common/finite_difference.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace t6::testing {

namespace {
void require_f64(const Tensor& x, const char* what) {
  T6_CHECK(x.dtype() == DType::F64, "finite_difference: ", what, " must be F64, got ", dtype_name(x.dtype()));
}
}  // namespace

HostTensor random_tensor(const Shape& shape, std::mt19937_64& rng, double lo, double hi) {
  HostTensor x(shape, DType::F64);
  std::uniform_real_distribution<double> uniform(lo, hi);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<double>()[i] = uniform(rng);
  return x;
}

HostTensor filled_tensor(const Shape& shape, double value) {
  HostTensor x(shape, DType::F64);
  std::fill_n(x.data<double>(), x.numel(), value);
  return x;
}

HostTensor copy_of(const Tensor& x) {
  HostTensor copy(x.shape(), DType::F64);
  copy_into(copy.view(), x);
  return copy;
}

void copy_into(Tensor dst, const Tensor& src) {
  require_f64(dst, "copy destination");
  require_f64(src, "copy source");
  T6_CHECK(dst.numel() == src.numel(), "copy_into: ", src.shape().to_string(), " into ", dst.shape().to_string());
  std::copy_n(src.data<double>(), src.numel(), dst.data<double>());
}

double dot(const Tensor& a, const Tensor& b) {
  require_f64(a, "dot operand");
  require_f64(b, "dot operand");
  T6_CHECK(a.numel() == b.numel(), "dot: ", a.shape().to_string(), " and ", b.shape().to_string());
  double sum = 0;
  for (int64_t i = 0; i < a.numel(); ++i) sum += a.data<double>()[i] * b.data<double>()[i];
  return sum;
}

HostTensor numerical_gradient(Tensor x, const std::function<double()>& loss, double h) {
  require_f64(x, "the differentiated tensor");
  HostTensor gradient(x.shape(), DType::F64);
  double* values = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double saved = values[i];
    values[i] = saved + h;
    const double plus = loss();
    values[i] = saved - h;
    const double minus = loss();
    values[i] = saved;
    gradient.data<double>()[i] = (plus - minus) / (2 * h);
  }
  return gradient;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  require_f64(actual, "actual");
  require_f64(expected, "expected");
  T6_CHECK(actual.numel() == expected.numel(), "relative_error: ", actual.shape().to_string(), " vs ",
           expected.shape().to_string());
  double max_diff = 0, max_expected = 0;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    const double a = actual.data<double>()[i], e = expected.data<double>()[i];
    // NaN must fail: std::max would drop it, so count it as an infinite difference.
    max_diff = std::isnan(a - e) ? INFINITY : std::max(max_diff, std::abs(a - e));
    if (std::isinf(max_diff)) break;
    max_expected = std::max(max_expected, std::abs(e));
  }
  return max_diff / std::max(max_expected, 1e-300);
}

::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double tolerance,
                                         const std::string& what) {
  if (actual.numel() != expected.numel())
    return ::testing::AssertionFailure() << what << ": " << actual.numel() << " elements, expected " << expected.numel();
  const double error = relative_error(actual, expected);
  if (error <= tolerance) return ::testing::AssertionSuccess();
  int64_t worst = 0;
  double worst_diff = -1;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    double diff = std::abs(actual.data<double>()[i] - expected.data<double>()[i]);
    if (std::isnan(diff)) diff = INFINITY;
    if (diff > worst_diff) worst_diff = diff, worst = i;
  }
  std::ostringstream message;
  message.precision(17);
  message << what << ": relative error " << error << " > " << tolerance << "; worst element " << worst << " of "
          << actual.shape().to_string() << ": got " << actual.data<double>()[worst] << ", expected "
          << expected.data<double>()[worst];
  return ::testing::AssertionFailure() << message.str();
}

::testing::AssertionResult gradient_matches(const Tensor& analytic, Tensor x, const std::function<double()>& loss,
                                            const std::string& what, double tolerance, double h) {
  const HostTensor numeric = numerical_gradient(x, loss, h);
  return tensors_close(analytic, numeric, tolerance, what + " (analytic vs central difference)");
}

}  // namespace t6::testing
