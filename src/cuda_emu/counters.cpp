// The runtime's counters (include/cuda_emu_counters.h).
#include "cuda_emu_counters.h"

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {
RuntimeCounters counters;  // guarded by runtime_mutex()
}

void count_allocation() {
  RuntimeLock lock(runtime_mutex());
  ++counters.allocations;
}

void count_synchronization() {
  RuntimeLock lock(runtime_mutex());
  ++counters.synchronizations;
}

void count_matmul() {
  RuntimeLock lock(runtime_mutex());
  ++counters.matmuls;
}

RuntimeCounters runtime_counters() {
  RuntimeLock lock(runtime_mutex());
  return counters;
}

void reset_runtime_counters() {
  RuntimeLock lock(runtime_mutex());
  counters = {};
}

}  // namespace t6::cuda_emu
