#include "checkpoint/chunk_writer.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace t6::checkpoint {

namespace {

// A run of words as (sum1, sum2) contributions: Σ w_i and Σ_i (n - i) w_i for i = 0..n-1; a run
// placed after others adds sum1_before · n to sum2 as well.
struct RunSums {
  uint64_t sum = 0, weighted = 0;
};

uint32_t big_endian_word(const unsigned char* at) { return (uint32_t(at[0]) << 8) | at[1]; }

RunSums scalar_run(const unsigned char* words, size_t n) {
  RunSums run;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t word = big_endian_word(words + 2 * i);
    run.sum += word;
    run.weighted += uint64_t(word) * uint32_t(n - i);
  }
  return run;
}

// The same for n = kLanes · kSteps words, in kLanes independent 32-bit lanes (GCC vector types):
// per lane, a running sum and a sum of running sums, as Fletcher itself, kept below 2^32 by the
// step count.
constexpr size_t kLanes = 16, kSteps = 256;
using WordLanes = uint16_t __attribute__((vector_size(kLanes * 2)));
using SumLanes = uint32_t __attribute__((vector_size(kLanes * 4)));

RunSums lane_run(const unsigned char* words) {
  SumLanes running = {}, running_total = {};
  for (size_t step = 0; step < kSteps; ++step) {
    WordLanes row;
    std::memcpy(&row, words + sizeof row * step, sizeof row);
    row = row << 8 | row >> 8;  // the words are big-endian
    running += __builtin_convertvector(row, SumLanes);
    running_total += running;
  }
  // Word (step s, lane j) has weight n - (s·kLanes + j) = kLanes·(kSteps - s) - j.
  RunSums run;
  for (size_t lane = 0; lane < kLanes; ++lane) {
    run.sum += running[lane];
    run.weighted += kLanes * uint64_t(running_total[lane]) - lane * uint64_t(running[lane]);
  }
  return run;
}

}  // namespace

uint32_t hdf5_fletcher32(const void* data, size_t bytes) {
  // Over words w_1..w_n: sum1 = Σ w_i and sum2 = Σ_i (n - i + 1) w_i, both mod 65535. HDF5 folds
  // as it goes, which keeps each sum's residue and keeps it non-zero once any word was non-zero;
  // so its result is the residue, written 0xffff instead of 0 unless every word is 0.
  const auto* byte = static_cast<const unsigned char*>(data);
  const size_t words = bytes / 2;
  uint64_t sum1 = 0, sum2 = 0;
  bool any_nonzero = false;
  const auto add = [&](const RunSums& run, size_t n) {
    any_nonzero = any_nonzero || run.sum != 0;
    sum2 = (sum2 + sum1 * (n % 65535) + run.weighted % 65535) % 65535;
    sum1 = (sum1 + run.sum) % 65535;
  };
  constexpr size_t kLaneRunWords = kLanes * kSteps;
  size_t done = 0;
  for (; done + kLaneRunWords <= words; done += kLaneRunWords) add(lane_run(byte + 2 * done), kLaneRunWords);
  add(scalar_run(byte + 2 * done, words - done), words - done);
  if (bytes % 2 == 1) add({uint64_t(byte[bytes - 1]) << 8, uint64_t(byte[bytes - 1]) << 8}, 1);  // the high half of a word
  if (!any_nonzero) return 0;
  const auto folded = [](uint64_t residue) { return residue == 0 ? uint32_t(0xffff) : uint32_t(residue); };
  return folded(sum2) << 16 | folded(sum1);
}

bool chunks_are_row_runs(const std::vector<hsize_t>& shape, const std::vector<hsize_t>& chunk) {
  if (shape.empty() || shape.size() != chunk.size()) return false;
  for (size_t axis = 0; axis < shape.size(); ++axis)
    if (shape[axis] == 0 || (axis > 0 && chunk[axis] != shape[axis])) return false;
  return true;
}

void write_fletcher32_chunks(hid_t dataset, const unsigned char* source, const std::vector<hsize_t>& shape,
                             const std::vector<hsize_t>& chunk, size_t element_bytes, const std::string& where) {
  T6_ASSERT(chunks_are_row_runs(shape, chunk));
  size_t row_bytes = element_bytes;
  for (size_t axis = 1; axis < shape.size(); ++axis) row_bytes *= size_t(shape[axis]);
  const size_t chunk_bytes = size_t(chunk[0]) * row_bytes;
  std::vector<unsigned char> filtered(chunk_bytes + 4);  // the chunk, then its checksum
  std::vector<hsize_t> offset(shape.size(), 0);
  for (hsize_t row = 0; row < shape[0]; row += chunk[0]) {
    const size_t data_bytes = size_t(std::min(chunk[0], shape[0] - row)) * row_bytes;
    std::memcpy(filtered.data(), source + size_t(row) * row_bytes, data_bytes);
    std::memset(filtered.data() + data_bytes, 0, chunk_bytes - data_bytes);
    const uint32_t checksum = hdf5_fletcher32(filtered.data(), chunk_bytes);
    // Stored little-endian, as HDF5's filter stores it.
    const unsigned char stored[4] = {static_cast<unsigned char>(checksum), static_cast<unsigned char>(checksum >> 8),
                                     static_cast<unsigned char>(checksum >> 16), static_cast<unsigned char>(checksum >> 24)};
    std::memcpy(filtered.data() + chunk_bytes, stored, 4);
    offset[0] = row;
    T6_CHECK(H5Dwrite_chunk(dataset, H5P_DEFAULT, /*filters=*/0, offset.data(), filtered.size(), filtered.data()) >= 0,
             where, ": write failed (disk full?)");
  }
}

}  // namespace t6::checkpoint
