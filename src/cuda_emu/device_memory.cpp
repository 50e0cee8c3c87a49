// Device memory and pinned host memory. Every emulated device owns 80 GiB of one address range that
// is reserved once (PROT_NONE, MAP_NORESERVE: no memory is committed until touched) and opened for
// reading and writing only while device work runs, so host code that dereferences a device pointer
// gets SIGSEGV at once, as it would on a GPU. Allocations are first fit, 256-byte aligned; freed
// pages go back to the system. Pinned host memory is ordinary host memory that is remembered as
// pinned, which decides whether cudaMemcpyAsync may queue a copy.
#include <sys/mman.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {

constexpr size_t kAllocationAlignment = 256;
constexpr size_t kPageBytes = 4096;

struct Block {
  size_t requested = 0;  // what cudaMalloc was asked for: copies must stay inside it
  size_t reserved = 0;   // rounded up to the alignment
};

struct DeviceHeap {
  std::map<size_t, Block> blocks;  // by offset from the device's base
  size_t used = 0;
};

struct Memory {
  char* base = nullptr;  // device d owns [base + d·80 GiB, base + (d+1)·80 GiB)
  size_t bytes = 0;
  int open_depth = 0;
  std::array<DeviceHeap, kMaxEmulatedDevices> heaps;
  std::map<uintptr_t, size_t> pinned;  // start -> bytes
};

std::string hex(const void* pointer) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", pointer);
  return text;
}

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

Memory& memory() {
  static Memory* state = [] {
    auto* created = new Memory();  // never destroyed: device memory is freed at exit by thread_local owners
    created->bytes = size_t(emulated_device_count()) * kDeviceMemoryBytes;
    if (created->bytes > 0) {
      void* range = mmap(nullptr, created->bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (range == MAP_FAILED) {
        std::fprintf(stderr, "t6 emulated GPU: cannot reserve %zu GiB of address space for %d devices: %s\n",
                     created->bytes >> 30, emulated_device_count(), std::strerror(errno));
        std::abort();
      }
      created->base = static_cast<char*>(range);
      install_host_access_report(created->base, created->bytes);
    }
    return created;
  }();
  return *state;
}

bool in_device_range(const void* pointer) {
  const Memory& m = memory();
  const char* p = static_cast<const char*>(pointer);
  return m.base && p >= m.base && p < m.base + m.bytes;
}

// The live allocation holding `pointer` (in the device range), or nullptr.
const Block* find_block(const void* pointer, int* device, size_t* offset_in_block) {
  Memory& m = memory();
  const size_t offset = size_t(static_cast<const char*>(pointer) - m.base);
  *device = int(offset / kDeviceMemoryBytes);
  const size_t local = offset % kDeviceMemoryBytes;
  const DeviceHeap& heap = m.heaps[size_t(*device)];
  auto after = heap.blocks.upper_bound(local);
  if (after == heap.blocks.begin()) return nullptr;
  const auto& [start, block] = *std::prev(after);
  if (local >= start + block.reserved) return nullptr;
  *offset_in_block = local - start;
  return &block;
}

void set_protection(int protection) {
  Memory& m = memory();
  if (m.base && mprotect(m.base, m.bytes, protection) != 0) {
    std::fprintf(stderr, "t6 emulated GPU: mprotect of device memory failed: %s\n", std::strerror(errno));
    std::abort();
  }
}

}  // namespace

MemoryKind memory_kind(const void* pointer) {
  RuntimeLock lock(runtime_mutex());
  if (in_device_range(pointer)) return MemoryKind::Device;
  const Memory& m = memory();
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  auto after = m.pinned.upper_bound(address);
  if (after != m.pinned.begin() && address < std::prev(after)->first + std::prev(after)->second)
    return MemoryKind::PinnedHost;
  return MemoryKind::PageableHost;
}

cudaError_t check_device_span(const char* call, const char* what, const void* pointer, size_t bytes) {
  RuntimeLock lock(runtime_mutex());
  const std::string where = std::string(call) + ": " + what + " " + hex(pointer);
  if (!in_device_range(pointer)) return api_error(cudaErrorInvalidValue, where + " is not device memory");
  int device = 0;
  size_t offset = 0;
  const Block* block = find_block(pointer, &device, &offset);
  if (!block) return api_error(cudaErrorInvalidValue, where + " is not inside a live cudaMalloc allocation");
  if (bytes > block->requested - std::min(offset, block->requested))
    return api_error(cudaErrorInvalidValue, where + ": " + std::to_string(bytes) + " bytes at offset " +
                                                std::to_string(offset) + " run past the end of its " +
                                                std::to_string(block->requested) + "-byte allocation");
  return cudaSuccess;
}

DeviceMemoryAccess::DeviceMemoryAccess() {
  runtime_mutex().lock();
  if (memory().open_depth++ == 0) set_protection(PROT_READ | PROT_WRITE);
}

DeviceMemoryAccess::~DeviceMemoryAccess() {
  if (--memory().open_depth == 0) set_protection(PROT_NONE);
  runtime_mutex().unlock();
}

}  // namespace t6::cuda_emu

using namespace t6::cuda_emu;

extern "C" {

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  RuntimeLock lock(runtime_mutex());
  if (!pointer) return api_error(cudaErrorInvalidValue, "cudaMalloc: the result pointer is null");
  count_allocation();
  *pointer = nullptr;
  const int device = current_device();
  if (const cudaError_t error = check_device("cudaMalloc", device)) return error;
  if (bytes == 0) return cudaSuccess;
  Memory& m = memory();
  DeviceHeap& heap = m.heaps[size_t(device)];
  const size_t reserved = round_up(bytes, kAllocationAlignment);
  size_t gap_start = 0;  // first fit: the lowest gap between allocations that is large enough
  for (const auto& [start, block] : heap.blocks) {
    if (start - gap_start >= reserved) break;
    gap_start = start + block.reserved;
  }
  if (bytes > kDeviceMemoryBytes || gap_start + reserved > kDeviceMemoryBytes)
    return api_error(cudaErrorMemoryAllocation,
                     "cudaMalloc: " + std::to_string(bytes) + " bytes do not fit on emulated device " +
                         std::to_string(device) + ", which has " + std::to_string(kDeviceMemoryBytes - heap.used) +
                         " of " + std::to_string(kDeviceMemoryBytes) + " bytes free");
  heap.blocks.emplace(gap_start, Block{bytes, reserved});
  heap.used += reserved;
  *pointer = m.base + size_t(device) * kDeviceMemoryBytes + gap_start;
  return cudaSuccess;
}

// Waits for the device's queued work first, as the real cudaFree does: it may still use the memory.
cudaError_t cudaFree(void* pointer) {
  RuntimeLock lock(runtime_mutex());
  if (!pointer) return cudaSuccess;
  if (!in_device_range(pointer))
    return api_error(cudaErrorInvalidValue,
                     "cudaFree: " + hex(pointer) +
                         (memory_kind(pointer) == MemoryKind::PinnedHost
                              ? " is pinned host memory (free it with cudaFreeHost)"
                              : " is not device memory (a host pointer?)"));
  int device = 0;
  size_t offset = 0;
  const Block* block = find_block(pointer, &device, &offset);
  if (!block || offset != 0)
    return api_error(cudaErrorInvalidValue, "cudaFree: " + hex(pointer) + " is not the start of a live allocation");
  const size_t reserved = block->reserved;
  run_device(device);
  Memory& m = memory();
  DeviceHeap& heap = m.heaps[size_t(device)];
  const size_t start = size_t(static_cast<char*>(pointer) - m.base) % kDeviceMemoryBytes;
  heap.used -= reserved;
  heap.blocks.erase(start);
  // Give whole pages back; pages shared with a neighbouring allocation stay.
  char* first_page = m.base + size_t(device) * kDeviceMemoryBytes + round_up(start, kPageBytes);
  char* end_page = m.base + size_t(device) * kDeviceMemoryBytes + (start + reserved) / kPageBytes * kPageBytes;
  if (end_page > first_page) madvise(first_page, size_t(end_page - first_page), MADV_DONTNEED);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  RuntimeLock lock(runtime_mutex());
  if (!free_bytes || !total_bytes) return api_error(cudaErrorInvalidValue, "cudaMemGetInfo: a result pointer is null");
  if (const cudaError_t error = check_device("cudaMemGetInfo", current_device())) return error;
  *total_bytes = kDeviceMemoryBytes;
  *free_bytes = kDeviceMemoryBytes - memory().heaps[size_t(current_device())].used;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** pointer, size_t bytes, unsigned int /*flags: portable, mapped, ... change nothing here*/) {
  RuntimeLock lock(runtime_mutex());
  if (!pointer) return api_error(cudaErrorInvalidValue, "cudaHostAlloc: the result pointer is null");
  count_allocation();
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  void* host = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (host == MAP_FAILED)
    return api_error(cudaErrorMemoryAllocation, "cudaHostAlloc: " + std::to_string(bytes) + " bytes: " +
                                                    std::strerror(errno));
  memory().pinned.emplace(reinterpret_cast<uintptr_t>(host), bytes);
  *pointer = host;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** pointer, size_t bytes) { return cudaHostAlloc(pointer, bytes, cudaHostAllocDefault); }

// Queued copies may still read or write the buffer: every device's work runs first.
cudaError_t cudaFreeHost(void* pointer) {
  RuntimeLock lock(runtime_mutex());
  if (!pointer) return cudaSuccess;
  if (in_device_range(pointer))
    return api_error(cudaErrorInvalidValue, "cudaFreeHost: " + hex(pointer) + " is device memory (free it with cudaFree)");
  Memory& m = memory();
  const auto found = m.pinned.find(reinterpret_cast<uintptr_t>(pointer));
  if (found == m.pinned.end())
    return api_error(cudaErrorInvalidValue,
                     "cudaFreeHost: " + hex(pointer) + " is not the start of memory from cudaMallocHost/cudaHostAlloc");
  for (int device = 0; device < emulated_device_count(); ++device) run_device(device);
  munmap(pointer, found->second);
  m.pinned.erase(found);
  return cudaSuccess;
}

}  // extern "C"
