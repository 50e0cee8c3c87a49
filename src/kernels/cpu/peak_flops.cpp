#include "kernels/peak_flops.h"

#include <omp.h>

#include <chrono>
#include <memory>
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

namespace {
// Σ x over [begin, end) in eight independent lanes of partial sums, so the loads, not the adds'
// latency, set the pace.
__attribute__((target_clones("arch=x86-64-v3", "default"))) float sum_of(const float* x, int64_t count) {
  float lanes[32] = {};
  int64_t i = 0;
  for (; i + 32 <= count; i += 32)
    for (int64_t lane = 0; lane < 32; ++lane) lanes[lane] += x[i + lane];
  float sum = 0;
  for (; i < count; ++i) sum += x[i];
  for (float lane : lanes) sum += lane;
  return sum;
}
}  // namespace

double measured_cpu_read_bandwidth(double budget_seconds) {
  constexpr int64_t n = int64_t(64) << 20;  // 256 MiB of floats
  const std::unique_ptr<float[]> data(new float[size_t(n)]);  // untouched until the threads write their shares
  double checksum = 0;
  const auto pass = [&] {
#pragma omp parallel reduction(+ : checksum)
    {
      const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
      const int64_t begin = n * thread / threads, end = n * (thread + 1) / threads;
      checksum += sum_of(data.get() + begin, end - begin);
    }
  };
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) data[size_t(i)] = 1.0f;  // each thread touches the pages it reads
  pass();
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t passes = 0;
  double seconds = 0;
  do {
    pass();
    ++passes;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < budget_seconds);
  if (checksum < 0) return 0;  // keeps the sums from being optimised away; never true
  return double(n) * sizeof(float) * double(passes) / seconds;
}

}  // namespace t6
