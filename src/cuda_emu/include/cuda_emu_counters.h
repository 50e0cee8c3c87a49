// What the emulated runtime counts, so that tests can assert "no allocation inside a step", "one
// host synchronisation per step" and how many GEMMs a layer runs. Include it only under
// #ifdef T6_CUDA_EMU.
#pragma once
#include <cstdint>

namespace t6::cuda_emu {

struct RuntimeCounters {
  uint64_t allocations = 0;      // cudaMalloc, cudaMallocHost, cudaHostAlloc
  uint64_t synchronizations = 0;  // stream, device and event synchronisations, and copies that wait for the host
  uint64_t matmuls = 0;           // cublasLtMatmul calls that were accepted (enqueued)
};

RuntimeCounters runtime_counters();
void reset_runtime_counters();

}  // namespace t6::cuda_emu
