// Finite-difference gradient checks for the op tests, in double precision (F64 host tensors).
//
// Typical use, for an op y = f(x) with backward dx = f'(x)ᵀ·dy:
//   HostTensor w = random_tensor(y_shape, rng);              // L = Σ w ⊙ f(x)
//   auto loss = [&] { forward(y, x); return dot(w, y); };
//   backward(dx, /*dy=*/w, x);
//   EXPECT_TRUE(gradient_matches(dx, x, loss, "dx"));
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "core/tensor.h"

namespace t6::testing {

// An F64 host tensor of independent uniform values in [lo, hi).
HostTensor random_tensor(const Shape& shape, std::mt19937_64& rng, double lo = -1.0, double hi = 1.0);
// An F64 host tensor with every element equal to value (NaN is useful to poison workspaces).
HostTensor filled_tensor(const Shape& shape, double value);
// A fresh F64 copy of an F64 tensor, with the same shape.
HostTensor copy_of(const Tensor& x);
// Copies every element of src into dst (same element count, both F64).
void copy_into(Tensor dst, const Tensor& src);

// Σ a ⊙ b over all elements of two F64 tensors of equal element count.
double dot(const Tensor& a, const Tensor& b);

// The central-difference gradient (L(x + h·e_i) − L(x − h·e_i)) / 2h of loss() with respect to every
// element of x. x is perturbed in place, one element at a time, and restored bit-for-bit after each.
HostTensor numerical_gradient(Tensor x, const std::function<double()>& loss, double h = 1e-6);

// max |actual − expected| / max |expected| (normwise relative error; the norm of expected is floored at
// 1e-300 so an all-zero expected tensor asks for an all-zero actual one).
double relative_error(const Tensor& actual, const Tensor& expected);

// Success when relative_error(actual, expected) <= tolerance; the failure message names `what`, the
// error, and the worst element.
::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double tolerance,
                                         const std::string& what);

// The default tolerance of gradient_matches. With h = 1e-6 in double the central difference has a
// truncation error of about h²·|L'''| ≈ 1e-12 and a cancellation error of about ε·|L|/h ≈
// 1e-16·10/1e-6 = 1e-9 for the O(1)-sized losses of these tests, so a correct backward agrees to
// ~1e-9 relative; 1e-6 leaves three orders of margin for that, while a wrong sign, a missing term or
// a wrong index gives an O(1) relative error.
inline constexpr double kGradientTolerance = 1e-6;

// Compares an analytic gradient with numerical_gradient(x, loss, h).
::testing::AssertionResult gradient_matches(const Tensor& analytic, Tensor x, const std::function<double()>& loss,
                                            const std::string& what, double tolerance = kGradientTolerance,
                                            double h = 1e-6);

}  // namespace t6::testing
