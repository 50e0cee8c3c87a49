// The emulated runtime's shared internals: the one lock around its state, error recording, the
// emulated devices, the device address range and the stream machinery that the API files
// (device_memory.cpp, streams.cpp, events.cpp, memcpy.cpp, ...) build on. Only src/cuda_emu includes it.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>

#include "cuda_emu/device_work.h"

namespace t6::cuda_emu {

// One recursive lock around all runtime state: several host threads may call CUDA, and device work
// that runs at a synchronisation point may itself enqueue or flush (an event wait, an NCCL call).
std::recursive_mutex& runtime_mutex();
using RuntimeLock = std::lock_guard<std::recursive_mutex>;

// ---- errors (errors.cpp) ----
// Records a failed API call on this thread: cudaGetLastError returns `code`, and cudaGetErrorString
// of `code` returns `message` (which names the call) until the next failure on this thread.
cudaError_t api_error(cudaError_t code, std::string message);
// The sticky launch failure of `device` (cudaSuccess if none): a DeviceFault in device work sets it,
// and every synchronisation returns it until cudaDeviceReset.
cudaError_t sticky_error(int device);
void set_sticky_fault(int device, std::string message);
void clear_sticky_fault(int device);

// ---- devices (device_properties.cpp) ----
constexpr int kMaxEmulatedDevices = 16;
int emulated_device_count();  // T6_EMU_DEVICES, default 1
int current_device();         // of the calling host thread
// cudaErrorInvalidDevice naming `call`, `device` and T6_EMU_DEVICES, or cudaSuccess for a valid device.
cudaError_t check_device(const char* call, int device);

// ---- memory (device_memory.cpp) ----
constexpr size_t kDeviceMemoryBytes = size_t(80) << 30;  // per emulated device
enum class MemoryKind { PageableHost, PinnedHost, Device };
MemoryKind memory_kind(const void* pointer);
// cudaSuccess if [pointer, pointer + bytes) lies inside one live device allocation; otherwise a
// cudaErrorInvalidValue naming `call` and `what` (e.g. "the destination").
cudaError_t check_device_span(const char* call, const char* what, const void* pointer, size_t bytes);
// Device memory is readable and writable only while one of these lives (device work runs); host
// code that touches it otherwise gets SIGSEGV. Nests.
class DeviceMemoryAccess {
 public:
  DeviceMemoryAccess();
  ~DeviceMemoryAccess();
  DeviceMemoryAccess(const DeviceMemoryAccess&) = delete;
  DeviceMemoryAccess& operator=(const DeviceMemoryAccess&) = delete;
};

// Makes a SIGSEGV inside [base, base + bytes) print what happened (host_access_report.cpp).
void install_host_access_report(const void* base, size_t bytes);

// ---- counters (counters.cpp) ----
void count_allocation();
void count_synchronization();
void count_matmul();

// ---- streams (streams.cpp) ----
// The stream object behind a cudaStream_t handle, or nullptr for an unknown handle. 0,
// cudaStreamLegacy and cudaStreamPerThread resolve to the current device's legacy stream.
CUstream_st* resolve_stream(cudaStream_t stream);
// Queues work and returns its position (a process-wide sequence number, increasing).
uint64_t enqueue_on(CUstream_st* stream, std::string what, std::function<void()> work);
// Runs the stream's queued items up to and including position `last`, honouring the legacy stream's
// implicit ordering with blocking streams. Returns the device's sticky error.
cudaError_t run_until(CUstream_st* stream, uint64_t last);
cudaError_t run_all(CUstream_st* stream);
int stream_device(const CUstream_st* stream);
uint64_t stream_id(const CUstream_st* stream);  // never reused, unlike the pointer
CUstream_st* stream_by_id(uint64_t id);         // nullptr once destroyed
// Runs every stream of `device` to its end (cudaDeviceSynchronize, cudaFree).
cudaError_t run_device(int device);
// Drops every queued item of `device` without running it (cudaDeviceReset).
void discard_device_work(int device);

}  // namespace t6::cuda_emu
