// The out-of-line parts of the emulated WMMA (include/mma.h): seeded fragment layouts, the pointer
// and ldm rules, and the tile product.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "device_work.h"
#include "mma.h"
#include "cuda_emu_schedule.h"

namespace t6::cuda_emu {

const uint16_t* fragment_positions(int rows, int columns, uint64_t salt) {
  static std::mutex guard;
  static std::map<std::tuple<int, int, uint64_t>, std::vector<uint16_t>> layouts;
  const std::lock_guard<std::mutex> lock(guard);
  std::vector<uint16_t>& positions = layouts[{rows, columns, salt}];
  if (positions.empty()) {
    positions.resize(size_t(rows) * size_t(columns));
    std::iota(positions.begin(), positions.end(), uint16_t(0));
    std::mt19937_64 random(schedule_seed() * 0x9E3779B97F4A7C15ull + salt);
    std::shuffle(positions.begin(), positions.end(), random);
  }
  return positions.data();
}

void check_matrix_pointer(const char* operation, const void* pointer, unsigned ldm, size_t element_bytes) {
  if (reinterpret_cast<uintptr_t>(pointer) % 32 != 0)
    throw DeviceFault(std::string(operation) + ": the pointer is not 32-byte aligned (" +
                      std::to_string(reinterpret_cast<uintptr_t>(pointer) % 32) + " bytes past a 32-byte boundary)");
  if (ldm * element_bytes % 16 != 0)
    throw DeviceFault(std::string(operation) + ": ldm " + std::to_string(ldm) + " is not a multiple of " +
                      std::to_string(16 / element_bytes) + " elements (16 bytes)");
}

void multiply_tiles(float* d, const float* a, const float* b, const float* c, int m, int n, int k) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      float sum = c[i * n + j];
      for (int p = 0; p < k; ++p) sum += a[i * k + p] * b[p * n + j];
      d[i * n + j] = sum;
    }
}

}  // namespace t6::cuda_emu
