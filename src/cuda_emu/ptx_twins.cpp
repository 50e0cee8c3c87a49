// The emulated PTX instructions (include/cuda_emu_ptx.h).
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "cuda_emu/device_work.h"
#include "cuda_emu_executor.h"
#include "cuda_emu_ptx.h"

namespace t6::cuda_emu::ptx {

namespace {

float low_half(uint32_t pair) { return t6::bf16_bits_to_float(uint16_t(pair & 0xffffu)); }
float high_half(uint32_t pair) { return t6::bf16_bits_to_float(uint16_t(pair >> 16)); }

// The documented fragment layouts, as (row, column) of the element in the low half of a register
// (the high half is the next column for A and the next row for B).
void a_position(int lane, int reg, int* row, int* col) {
  *row = lane / 4 + (reg % 2) * 8;
  *col = 2 * (lane % 4) + (reg / 2) * 8;
}
void b_position(int lane, int reg, int* row, int* col) {
  *row = 2 * (lane % 4) + reg * 8;
  *col = lane / 4;
}
void c_position(int lane, int index, int* row, int* col) {
  *row = lane / 4 + (index / 2) * 8;
  *col = 2 * (lane % 4) + index % 2;
}

std::string address_text(const void* pointer) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", pointer);
  return text;
}

}  // namespace

void mma_m16n8k16_bf16_lanes(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4], float d[32][4]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    int row = 0, col = 0;
    for (int reg = 0; reg < 4; ++reg) {
      a_position(lane, reg, &row, &col);
      A[row][col] = low_half(a[lane][reg]);
      A[row][col + 1] = high_half(a[lane][reg]);
    }
    for (int reg = 0; reg < 2; ++reg) {
      b_position(lane, reg, &row, &col);
      B[row][col] = low_half(b[lane][reg]);
      B[row + 1][col] = high_half(b[lane][reg]);
    }
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int index = 0; index < 4; ++index) {
      int row = 0, col = 0;
      c_position(lane, index, &row, &col);
      float sum = c[lane][index];
      for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
      d[lane][index] = sum;
    }
}

void ldmatrix_x4_lanes(const void* const row_addresses[32], uint32_t registers[32][4]) {
  for (int l = 0; l < 32; ++l)
    if (reinterpret_cast<uintptr_t>(row_addresses[l]) % 16 != 0)
      throw DeviceFault("ldmatrix.x4: lane " + std::to_string(l) + "'s row address " + address_text(row_addresses[l]) +
                        " is not 16-byte aligned");
  for (int lane = 0; lane < 32; ++lane)
    for (int matrix = 0; matrix < 4; ++matrix) {
      const auto* row = static_cast<const uint16_t*>(row_addresses[matrix * 8 + lane / 4]);
      const int col = 2 * (lane % 4);
      registers[lane][matrix] = uint32_t(row[col]) | (uint32_t(row[col + 1]) << 16);
    }
}

void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  struct Lane {
    const uint32_t *a, *b;
    const float* c;
    float* d;
  } lane{a, b, c, d};
  warp_collective({"mma.sync.m16n8k16", 0xffffffffu, {0, 0, 0}, &lane, [](void* const lanes[32]) {
                     uint32_t all_a[32][4], all_b[32][2];
                     float all_c[32][4], all_d[32][4];
                     for (int l = 0; l < 32; ++l) {
                       const Lane& from = *static_cast<const Lane*>(lanes[l]);
                       std::memcpy(all_a[l], from.a, sizeof all_a[l]);
                       std::memcpy(all_b[l], from.b, sizeof all_b[l]);
                       std::memcpy(all_c[l], from.c, sizeof all_c[l]);
                     }
                     mma_m16n8k16_bf16_lanes(all_a, all_b, all_c, all_d);
                     for (int l = 0; l < 32; ++l) std::memcpy(static_cast<Lane*>(lanes[l])->d, all_d[l], sizeof all_d[l]);
                   }});
}

void ldmatrix_x4(uint32_t registers[4], const void* row_address) {
  struct Lane {
    const void* address;
    uint32_t* registers;
  } lane{row_address, registers};
  warp_collective({"ldmatrix.x4", 0xffffffffu, {0, 0, 0}, &lane, [](void* const lanes[32]) {
                     const void* addresses[32];
                     uint32_t loaded[32][4];
                     for (int l = 0; l < 32; ++l) addresses[l] = static_cast<const Lane*>(lanes[l])->address;
                     ldmatrix_x4_lanes(addresses, loaded);
                     for (int l = 0; l < 32; ++l)
                       std::memcpy(static_cast<Lane*>(lanes[l])->registers, loaded[l], sizeof loaded[l]);
                   }});
}

namespace {

struct PendingCopy {
  void* destination;
  const void* source;
};

// The cp.async copies of each CUDA thread of the running block, by thread. Shared memory dies with
// its block, so the copies a block never waited for are dropped when the next block starts.
struct BlockCopies {
  uint64_t block = ~uint64_t(0);
  struct Thread {
    std::vector<PendingCopy> open;
    std::deque<std::vector<PendingCopy>> committed;
  };
  std::map<uint64_t, Thread> threads;
};
thread_local BlockCopies block_copies;  // blocks run one after another on the launching host thread

uint64_t linear(const uint3& index, const dim3& extent) {
  return (uint64_t(index.z) * extent.y + index.y) * extent.x + index.x;
}

BlockCopies::Thread& this_thread_copies() {
  const ThreadBuiltins& self = builtins();
  const uint64_t block = linear(self.block_index, self.grid_dim);
  if (block != block_copies.block) {
    block_copies.threads.clear();
    block_copies.block = block;
  }
  return block_copies.threads[linear(self.thread_index, self.block_dim)];
}

}  // namespace

void cp_async_16(void* shared_destination, const void* global_source) {
  if (reinterpret_cast<uintptr_t>(shared_destination) % 16 != 0 || reinterpret_cast<uintptr_t>(global_source) % 16 != 0)
    throw DeviceFault("cp.async.cg 16 bytes: " + address_text(global_source) + " -> " + address_text(shared_destination) +
                      " is not 16-byte aligned");
  this_thread_copies().open.push_back({shared_destination, global_source});
}

void cp_async_commit_group() {
  BlockCopies::Thread& copies = this_thread_copies();
  copies.committed.push_back(std::move(copies.open));
  copies.open.clear();
}

void cp_async_wait_group(int pending_groups) {
  BlockCopies::Thread& copies = this_thread_copies();
  while (copies.committed.size() > size_t(pending_groups)) {
    for (const PendingCopy& copy : copies.committed.front()) std::memcpy(copy.destination, copy.source, 16);
    copies.committed.pop_front();
  }
}

}  // namespace t6::cuda_emu::ptx
