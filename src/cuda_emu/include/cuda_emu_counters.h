// What the emulated runtime counts, so that tests can assert "no allocation inside a step" and "one
// host synchronisation per step". Include it only under #ifdef T6_CUDA_EMU.
#pragma once
#include <cstdint>

namespace t6::cuda_emu {

struct RuntimeCounters {
  uint64_t allocations = 0;      // cudaMalloc, cudaMallocHost, cudaHostAlloc
  uint64_t synchronizations = 0;  // stream, device and event synchronisations, and copies that wait for the host
};

RuntimeCounters runtime_counters();
void reset_runtime_counters();

}  // namespace t6::cuda_emu
