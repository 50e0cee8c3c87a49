#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "core/bf16.h"

#include "core/device_memory.h"
#include "kernels/ops.h"
#include "kernels/peak_flops.h"

namespace t6 {

double measured_cuda_bf16_gemm_flops(double budget_seconds) {
  constexpr int64_t kLargest = 4096;  // 96 MiB for the three matrices; cuBLASLt is near its peak there
  const DeviceBuffer a(size_t(kLargest * kLargest) * 2), b(a.bytes()), c(a.bytes());
  // Random operands: a GPU multiplying zeros draws less power and clocks higher than training does.
  std::vector<uint16_t> values(size_t(kLargest * kLargest));
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (uint16_t& value : values) value = float_to_bf16_bits(uniform(generator));
  const Tensor host(values.data(), {kLargest, kLargest}, DType::BF16);
  copy_tensor(a.as(host.shape(), DType::BF16), host);
  copy_tensor(b.as(host.shape(), DType::BF16), host);
  using clock = std::chrono::steady_clock;
  const auto seconds_since = [](clock::time_point start) {
    return std::chrono::duration<double>(clock::now() - start).count();
  };
  // Squares grow while one call takes under a millisecond (launch overhead would dominate the
  // rate), so a GPU measures near its peak while the emulated GPU stays at 512 and within budget.
  int64_t n = 512;
  const auto multiply = [&] {
    ops::matmul(c.as({n, n}, DType::BF16), a.as({n, n}, DType::BF16), b.as({n, n}, DType::BF16), false, true);
  };
  for (;;) {
    multiply();  // cuBLASLt's plan for this shape, then one timed call
    ops::wait_for_ops(Device::CUDA);
    const auto start = clock::now();
    multiply();
    ops::wait_for_ops(Device::CUDA);
    if (n == kLargest || seconds_since(start) >= 1e-3) break;
    n = std::min(kLargest, 2 * n);
  }
  const auto start = clock::now();
  int64_t calls = 0;
  do {
    for (int i = 0; i < 8; ++i) multiply();
    ops::wait_for_ops(Device::CUDA);
    calls += 8;
  } while (seconds_since(start) < budget_seconds);
  return 2.0 * double(n * n * n) * double(calls) / seconds_since(start);
}

}  // namespace t6
