// Streams: device work is queued and runs, in order, only when the host reaches a synchronisation
// point that needs it. Every queued item has a process-wide position, which gives the legacy
// stream's implicit ordering exactly: a legacy-stream item first runs what blocking streams of its
// device queued before it, and a blocking-stream item first runs what the legacy stream queued before
// it. Non-blocking streams (cudaStreamNonBlocking) take part in neither, so a synchronous copy does
// not wait for them and a host that never synchronised them reads stale data, as on a GPU.
#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "cuda_emu/runtime_state.h"

struct CUstream_st {
  uint64_t id = 0;
  int device = 0;
  bool legacy = false;
  unsigned flags = cudaStreamDefault;
  int priority = 0;
  struct Item {
    uint64_t position;
    std::string what;
    std::function<void()> work;
  };
  std::deque<Item> queue;

  bool blocking() const { return !legacy && !(flags & cudaStreamNonBlocking); }
};

namespace t6::cuda_emu {

namespace {

struct Streams {
  uint64_t next_position = 1;
  uint64_t next_id = 1;
  std::map<uint64_t, CUstream_st*> by_id;  // every live stream, the legacy ones included
  std::array<CUstream_st*, kMaxEmulatedDevices> legacy{};
};

Streams& streams() {
  static auto* state = new Streams();  // never destroyed: streams are used at exit
  return *state;
}

CUstream_st* create_stream(int device, bool legacy, unsigned flags, int priority) {
  Streams& s = streams();
  auto* stream = new CUstream_st();
  stream->id = s.next_id++;
  stream->device = device;
  stream->legacy = legacy;
  stream->flags = flags;
  stream->priority = priority;
  s.by_id.emplace(stream->id, stream);
  return stream;
}

CUstream_st* legacy_stream(int device) {
  CUstream_st*& stream = streams().legacy[size_t(device)];
  if (!stream) stream = create_stream(device, /*legacy=*/true, cudaStreamDefault, 0);
  return stream;
}

// The streams of `device` matching `wanted`, by id (running work may create or destroy streams).
template <class Predicate>
std::vector<uint64_t> stream_ids(int device, Predicate wanted) {
  std::vector<uint64_t> ids;
  for (const auto& [id, stream] : streams().by_id)
    if (stream->device == device && wanted(*stream)) ids.push_back(id);
  return ids;
}

// Runs what the legacy-stream rule orders before the item at `position` of `stream`.
void run_implicit_predecessors(CUstream_st* stream, uint64_t position) {
  if (stream->legacy) {
    for (uint64_t id : stream_ids(stream->device, [](const CUstream_st& s) { return s.blocking(); }))
      if (CUstream_st* blocking = stream_by_id(id)) run_until(blocking, position - 1);
  } else if (stream->blocking()) {
    run_until(legacy_stream(stream->device), position - 1);
  }
}

// The fault's message, prefixed with what failed unless it already names it (a kernel fault names
// its kernel, block and threads).
std::string fault_message(const std::string& what, const std::string& fault) {
  return fault.find(what) != std::string::npos ? fault : what + ": " + fault;
}

// After a launch failure the device is unusable, as on a GPU: later work is dropped, and every
// synchronisation reports the failure until cudaDeviceReset.
void run_item(int device, CUstream_st::Item& item) {
  if (sticky_error(device) != cudaSuccess) return;
  DeviceMemoryAccess access;
  try {
    item.work();
  } catch (const std::exception& fault) {  // a DeviceFault, or a library's own failure
    set_sticky_fault(device, fault_message(item.what, fault.what()));
  }
}

}  // namespace

CUstream_st* resolve_stream(cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) {
    if (check_device("stream", current_device()) != cudaSuccess) return nullptr;
    return legacy_stream(current_device());
  }
  for (const auto& [id, live] : streams().by_id)
    if (live == stream) return live;
  return nullptr;
}

uint64_t enqueue_on(CUstream_st* stream, std::string what, std::function<void()> work) {
  RuntimeLock lock(runtime_mutex());
  const uint64_t position = streams().next_position++;
  stream->queue.push_back({position, std::move(what), std::move(work)});
  return position;
}

cudaError_t run_until(CUstream_st* stream, uint64_t last) {
  RuntimeLock lock(runtime_mutex());
  const int device = stream->device;
  while (!stream->queue.empty() && stream->queue.front().position <= last) {
    CUstream_st::Item item = std::move(stream->queue.front());
    stream->queue.pop_front();
    run_implicit_predecessors(stream, item.position);
    run_item(device, item);
  }
  return sticky_error(device);
}

cudaError_t run_all(CUstream_st* stream) { return run_until(stream, UINT64_MAX); }

int stream_device(const CUstream_st* stream) { return stream->device; }
uint64_t stream_id(const CUstream_st* stream) { return stream->id; }

CUstream_st* stream_by_id(uint64_t id) {
  RuntimeLock lock(runtime_mutex());
  const auto found = streams().by_id.find(id);
  return found == streams().by_id.end() ? nullptr : found->second;
}

cudaError_t run_device(int device) {
  RuntimeLock lock(runtime_mutex());
  legacy_stream(device);
  for (uint64_t id : stream_ids(device, [](const CUstream_st&) { return true; }))
    if (CUstream_st* stream = stream_by_id(id)) run_all(stream);
  return sticky_error(device);
}

void discard_device_work(int device) {
  RuntimeLock lock(runtime_mutex());
  for (uint64_t id : stream_ids(device, [](const CUstream_st&) { return true; })) stream_by_id(id)->queue.clear();
}

void enqueue(cudaStream_t stream, std::string what, std::function<void()> work) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) {
    char handle[32];
    std::snprintf(handle, sizeof handle, "%p", static_cast<void*>(stream));
    api_error(cudaErrorInvalidResourceHandle, what + ": stream " + handle + " is not a live stream");
    return;
  }
  enqueue_on(target, std::move(what), std::move(work));
}

cudaError_t flush(cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return api_error(cudaErrorInvalidResourceHandle, "flush: not a live stream");
  return run_all(target);
}

}  // namespace t6::cuda_emu

using namespace t6::cuda_emu;

namespace {

cudaError_t unknown_stream(const char* call, cudaStream_t stream) {
  char handle[32];
  std::snprintf(handle, sizeof handle, "%p", static_cast<void*>(stream));
  return api_error(cudaErrorInvalidResourceHandle, std::string(call) + ": stream " + handle + " is not a live stream");
}

}  // namespace

extern "C" {

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority) {
  RuntimeLock lock(runtime_mutex());
  if (!stream) return api_error(cudaErrorInvalidValue, "cudaStreamCreate: the result pointer is null");
  if (flags & ~unsigned(cudaStreamNonBlocking))
    return api_error(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: unknown flags " + std::to_string(flags));
  if (const cudaError_t error = check_device("cudaStreamCreate", current_device())) return error;
  *stream = create_stream(current_device(), /*legacy=*/false, flags, priority);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return cudaStreamCreateWithPriority(stream, flags, 0);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithPriority(stream, cudaStreamDefault, 0); }

// The real call returns at once and lets queued work finish; here it runs that work now.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target || target->legacy) return unknown_stream("cudaStreamDestroy", stream);
  run_all(target);
  streams().by_id.erase(target->id);
  delete target;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaStreamSynchronize", stream);
  count_synchronization();
  return run_all(target);
}

// Emulated work only runs when someone waits for it, so a query that said "not ready" would stay so
// for ever in a polling loop: the query runs the stream's work and reports it done.
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaStreamQuery", stream);
  return run_all(target);
}

cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int* flags) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaStreamGetFlags", stream);
  if (!flags) return api_error(cudaErrorInvalidValue, "cudaStreamGetFlags: flags is null");
  *flags = target->flags;
  return cudaSuccess;
}

cudaError_t cudaStreamGetPriority(cudaStream_t stream, int* priority) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaStreamGetPriority", stream);
  if (!priority) return api_error(cudaErrorInvalidValue, "cudaStreamGetPriority: priority is null");
  *priority = target->priority;
  return cudaSuccess;
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaStreamGetDevice", stream);
  if (!device) return api_error(cudaErrorInvalidValue, "cudaStreamGetDevice: device is null");
  *device = target->device;
  return cudaSuccess;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t function, void* user_data) {
  RuntimeLock lock(runtime_mutex());
  CUstream_st* target = resolve_stream(stream);
  if (!target) return unknown_stream("cudaLaunchHostFunc", stream);
  if (!function) return api_error(cudaErrorInvalidValue, "cudaLaunchHostFunc: the function is null");
  enqueue_on(target, "cudaLaunchHostFunc", [function, user_data] { function(user_data); });
  return cudaSuccess;
}

}  // extern "C"
