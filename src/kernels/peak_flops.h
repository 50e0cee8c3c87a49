// The peak FLOP/s that model FLOP utilisation (MFU, docs/MODEL.md section 5) is measured against.
#pragma once

namespace t6 {

// The fp32 GEMM rate of this process's BLAS thread pool, measured with square SGEMMs for about
// budget_seconds (one warm-up call first). The CPU backend's matmuls run at this rate at best.
double measured_cpu_sgemm_flops(double budget_seconds = 0.2);

}  // namespace t6
