// cudaMemcpy, cudaMemcpyAsync, cudaMemset and cudaMemsetAsync as device work. The direction comes
// from the address range (so cudaMemcpyDefault works) and must agree with the kind given; a device
// span must lie inside one allocation. Synchronisation follows the runtime's documentation:
//   - cudaMemcpy runs on the legacy stream and, when the host is one side, returns once it has run
//     (it does not wait for non-blocking streams); device to device it only queues;
//   - cudaMemcpyAsync queues, except with pageable host memory on one side, where it runs at once;
//   - cudaMemset queues on the legacy stream (it is asynchronous for device memory).
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_emu/runtime_state.h"

using namespace t6::cuda_emu;

namespace {

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an unknown kind";
}

struct CopySides {
  MemoryKind dst, src;
  bool touches_host() const { return dst != MemoryKind::Device || src != MemoryKind::Device; }
  bool touches_pageable() const { return dst == MemoryKind::PageableHost || src == MemoryKind::PageableHost; }
};

cudaError_t check_side(const char* call, cudaMemcpyKind kind, const char* what, const void* pointer, MemoryKind actual,
                       bool device_expected, size_t bytes) {
  const bool is_device = actual == MemoryKind::Device;
  if (kind != cudaMemcpyDefault && is_device != device_expected) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", pointer);
    return api_error(cudaErrorInvalidMemcpyDirection, std::string(call) + ": kind " + kind_name(kind) + ", but " + what +
                                                          " " + address + " is " +
                                                          (is_device ? "device memory" : "host memory"));
  }
  return is_device ? check_device_span(call, what, pointer, bytes) : cudaSuccess;
}

cudaError_t check_copy(const char* call, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, CopySides* sides) {
  if (!dst || !src) return api_error(cudaErrorInvalidValue, std::string(call) + ": a null pointer");
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return api_error(cudaErrorInvalidMemcpyDirection, std::string(call) + ": unknown kind " + std::to_string(int(kind)));
  sides->dst = memory_kind(dst);
  sides->src = memory_kind(src);
  const bool device_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool device_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (const cudaError_t error = check_side(call, kind, "the source", src, sides->src, device_src, bytes)) return error;
  return check_side(call, kind, "the destination", dst, sides->dst, device_dst, bytes);
}

cudaError_t unknown_stream(const char* call) {
  return api_error(cudaErrorInvalidResourceHandle, std::string(call) + ": the stream is not a live stream");
}

}  // namespace

extern "C" {

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  RuntimeLock lock(runtime_mutex());
  if (bytes == 0) return cudaSuccess;
  CopySides sides{};
  if (const cudaError_t error = check_copy("cudaMemcpy", dst, src, bytes, kind, &sides)) return error;
  CUstream_st* legacy = resolve_stream(cudaStreamLegacy);
  if (!legacy) return check_device("cudaMemcpy", current_device());
  const uint64_t position = enqueue_on(legacy, "cudaMemcpy", [=] { std::memmove(dst, src, bytes); });
  if (!sides.touches_host()) return cudaSuccess;
  count_synchronization();
  return run_until(legacy, position);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaMemcpyAsync");
  if (bytes == 0) return cudaSuccess;
  CopySides sides{};
  if (const cudaError_t error = check_copy("cudaMemcpyAsync", dst, src, bytes, kind, &sides)) return error;
  const uint64_t position = enqueue_on(target, "cudaMemcpyAsync", [=] { std::memmove(dst, src, bytes); });
  if (!sides.touches_pageable()) return cudaSuccess;
  count_synchronization();
  return run_until(target, position);
}

cudaError_t cudaMemsetAsync(void* pointer, int value, size_t bytes, cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaMemsetAsync");
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t error = check_device_span("cudaMemset", "the destination", pointer, bytes)) return error;
  enqueue_on(target, "cudaMemset", [=] { std::memset(pointer, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaMemset(void* pointer, int value, size_t bytes) {
  return cudaMemsetAsync(pointer, value, bytes, cudaStreamLegacy);
}

}  // extern "C"
