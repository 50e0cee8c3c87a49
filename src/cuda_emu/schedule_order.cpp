#include "cuda_emu_schedule.h"
#include "device_work.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

namespace t6::cuda_emu {

namespace {

std::atomic<ScheduleOrder>& chosen_order() {
  static std::atomic<ScheduleOrder> order{[] {
    const char* value = std::getenv("T6_EMU_ORDER");
    if (!value || !*value || std::strcmp(value, "random") == 0) return ScheduleOrder::Random;
    if (std::strcmp(value, "forward") == 0) return ScheduleOrder::Forward;
    if (std::strcmp(value, "reverse") == 0) return ScheduleOrder::Reverse;
    refuse_environment_setting("T6_EMU_ORDER", value, "forward, reverse or random");
  }()};
  return order;
}

}  // namespace

ScheduleOrder schedule_order() { return chosen_order().load(); }

void set_schedule_order(ScheduleOrder order) { chosen_order().store(order); }

uint64_t schedule_seed() {
  static const uint64_t seed = [] {
    const char* value = std::getenv("T6_EMU_SEED");
    if (!value || !*value) return uint64_t(1);
    char* end = nullptr;
    const unsigned long long parsed = std::strtoull(value, &end, 10);
    if (*end != '\0') refuse_environment_setting("T6_EMU_SEED", value, "an unsigned integer");
    return uint64_t(parsed);
  }();
  return seed;
}

void order_indices(std::vector<int>& indices, int count, std::mt19937_64& random) {
  indices.resize(size_t(count));
  std::iota(indices.begin(), indices.end(), 0);
  switch (schedule_order()) {
    case ScheduleOrder::Forward: break;
    case ScheduleOrder::Reverse: std::reverse(indices.begin(), indices.end()); break;
    case ScheduleOrder::Random: std::shuffle(indices.begin(), indices.end(), random); break;
  }
}

}  // namespace t6::cuda_emu
