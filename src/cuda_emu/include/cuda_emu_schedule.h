// The order in which the emulated GPU runs blocks, and the fibers of a block between barriers:
// T6_EMU_ORDER = forward | reverse | random (the default: adversarial, so that code relying on an
// order the GPU does not promise fails here), with T6_EMU_SEED (default 1) seeding the random
// order and the WMMA fragment layouts. A result that depends on the order is a race. Tests may
// switch the order in-process (set_schedule_order) to check a kernel under all three.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace t6::cuda_emu {

enum class ScheduleOrder { Forward, Reverse, Random };

ScheduleOrder schedule_order();  // T6_EMU_ORDER, read once (an unknown value is an error), or as set
void set_schedule_order(ScheduleOrder order);
uint64_t schedule_seed();        // T6_EMU_SEED

// 0 .. count-1 in the chosen order (a fresh shuffle each call in random order).
void order_indices(std::vector<int>& indices, int count, std::mt19937_64& random);

}  // namespace t6::cuda_emu
