#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "core/bf16.h"

#include "core/device_memory.h"
#include "kernels/ops.h"
#include "kernels/peak_flops.h"

namespace t6 {

namespace {

using clock = std::chrono::steady_clock;
double seconds_since(clock::time_point start) { return std::chrono::duration<double>(clock::now() - start).count(); }

}  // namespace

double measured_cuda_bf16_gemm_flops(double budget_seconds) { return measured_cuda_gemm_flops(DType::BF16, budget_seconds); }

double measured_cuda_gemm_flops(DType operands, double budget_seconds) {
  constexpr int64_t kLargest = 4096;  // 96 MiB (bf16) for the three matrices; cuBLASLt is near its peak there
  const DType dtype = operands;
  const DeviceBuffer a(size_t(kLargest * kLargest) * dtype_size(dtype)), b(a.bytes()), c(a.bytes());
  // Random operands: a GPU multiplying zeros draws less power and clocks higher than training does.
  std::vector<float> values(size_t(kLargest * kLargest));
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& value : values) value = uniform(generator);
  std::vector<uint16_t> bits;
  if (dtype == DType::BF16)
    for (float value : values) bits.push_back(float_to_bf16_bits(value));
  const Tensor host(dtype == DType::BF16 ? static_cast<void*>(bits.data()) : values.data(), {kLargest, kLargest}, dtype);
  copy_tensor(a.as(host.shape(), dtype), host);
  copy_tensor(b.as(host.shape(), dtype), host);
  // Squares grow while one call takes under a millisecond (launch overhead would dominate the
  // rate), so a GPU measures near its peak while the emulated GPU stays at 512 and within budget.
  int64_t n = 512;
  const auto multiply = [&] {
    ops::matmul(c.as({n, n}, dtype), a.as({n, n}, dtype), b.as({n, n}, dtype), false, true);
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

double measured_cuda_read_bandwidth(double budget_seconds) {
  constexpr int64_t kElements = int64_t(128) << 20;  // 512 MiB: far past the L2 cache
  const DeviceBuffer buffer(size_t(kElements) * sizeof(float));
  const Tensor x = buffer.as({kElements}, DType::F32);
  ops::sum_of_squares({x});  // each call reads every byte once and waits for the result
  const auto start = clock::now();
  int64_t passes = 0;
  do {
    ops::sum_of_squares({x});
    ++passes;
  } while (seconds_since(start) < budget_seconds);
  return double(passes) * double(x.bytes()) / seconds_since(start);
}

}  // namespace t6
