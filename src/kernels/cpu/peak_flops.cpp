#include "kernels/peak_flops.h"

#include <chrono>
#include <vector>

#include "kernels/cpu/blas.h"

namespace t6 {

double measured_cpu_sgemm_flops(double budget_seconds) {
  // 512³: large enough for OpenBLAS's blocked kernel to reach its rate, small enough (1 MiB per
  // matrix, 0.27 GFLOP per call) that a slow core still fits several calls in the budget.
  constexpr int64_t n = 512;
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n), 0.0f);
  const auto multiply = [&] { ops::cpu::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); };
  multiply();  // thread start, first touch
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t calls = 0;
  double seconds = 0;
  do {
    multiply();
    ++calls;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < budget_seconds);
  return 2.0 * double(n * n * n) * double(calls) / seconds;
}

}  // namespace t6
