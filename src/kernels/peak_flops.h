// The peak rates a run is measured against: FLOP/s for model FLOP utilisation (MFU, docs/MODEL.md
// section 5), and memory read bandwidth for the decode roofline (bench_decode).
#pragma once
#include "core/dtype.h"

namespace t6 {

// The fp32 GEMM rate of this process's BLAS thread pool, measured with square SGEMMs for about
// budget_seconds (one warm-up call first). The CPU backend's matmuls run at this rate at best.
double measured_cpu_sgemm_flops(double budget_seconds = 0.2);

// The bf16 GEMM rate (fp32 accumulation) of the current GPU through ops::matmul (cuBLASLt), measured
// for about budget_seconds on random squares of up to 4096: the rate the CUDA backend's matmuls
// reach at best, and what its MFU is measured against. Throws in a build without CUDA.
double measured_cuda_bf16_gemm_flops(double budget_seconds = 0.2);
// The same for `operands` F32 or BF16 (fp32 operands run without TF32: the CUDA decoder's matmuls).
double measured_cuda_gemm_flops(DType operands, double budget_seconds = 0.2);
// Bytes per second the current GPU reads, by sums of squares over 512 MiB of device memory for about
// budget_seconds (one pass first): the decode roofline on the CUDA backend. Throws without CUDA.
double measured_cuda_read_bandwidth(double budget_seconds = 0.3);

// Bytes per second the OpenMP team reads from memory, measured by summing a 256 MiB buffer (far past
// the caches) for about budget_seconds, each thread its share, after one pass to touch it.
double measured_cpu_read_bandwidth(double budget_seconds = 0.3);

}  // namespace t6
