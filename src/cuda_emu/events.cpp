// Events: a record is an item queued on its stream that notes the host clock when it runs, so elapsed
// times measure the emulated execution. A wait queues an item that runs the recording stream up to
// the record (if it has not run yet), which orders two streams as on a GPU.
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "cuda_emu/runtime_state.h"

namespace {

struct Record {
  uint64_t stream_id = 0;
  uint64_t position = 0;
  int device = 0;
  bool completed = false;
  std::chrono::steady_clock::time_point time;
};

}  // namespace

struct CUevent_st {
  unsigned flags = cudaEventDefault;
  std::shared_ptr<Record> last;  // the newest record; queued items keep theirs alive
};

using namespace t6::cuda_emu;

namespace {

std::set<CUevent_st*>& live_events() {
  static auto* events = new std::set<CUevent_st*>();
  return *events;
}

bool is_live(cudaEvent_t event) { return event && live_events().count(event) > 0; }

cudaError_t unknown_event(const char* call, cudaEvent_t event) {
  char handle[32];
  std::snprintf(handle, sizeof handle, "%p", static_cast<void*>(event));
  return api_error(cudaErrorInvalidResourceHandle, std::string(call) + ": event " + handle + " is not a live event");
}

// Runs the recording stream up to the record. Returns the recording device's sticky error.
cudaError_t complete(const Record& record) {
  if (!record.completed)
    if (CUstream_st* stream = stream_by_id(record.stream_id)) run_until(stream, record.position);
  return sticky_error(record.device);
}

}  // namespace

extern "C" {

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  RuntimeLock lock(runtime_mutex());
  if (!event) return api_error(cudaErrorInvalidValue, "cudaEventCreate: the result pointer is null");
  if (flags & ~unsigned(cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess))
    return api_error(cudaErrorInvalidValue, "cudaEventCreateWithFlags: unknown flags " + std::to_string(flags));
  auto* created = new CUevent_st();
  created->flags = flags;
  live_events().insert(created);
  *event = created;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  RuntimeLock lock(runtime_mutex());
  if (!is_live(event)) return unknown_event("cudaEventDestroy", event);
  live_events().erase(event);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  if (!is_live(event)) return unknown_event("cudaEventRecord", event);
  CUstream_st* target = resolve_stream(stream);
  if (!target) return api_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: the stream is not a live stream");
  auto record = std::make_shared<Record>();
  record->stream_id = stream_id(target);
  record->device = stream_device(target);
  record->position = enqueue_on(target, "cudaEventRecord", [record] {
    record->time = std::chrono::steady_clock::now();
    record->completed = true;
  });
  event->last = record;
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int /*flags*/) {
  RuntimeLock lock(runtime_mutex());
  if (!is_live(event)) return unknown_event("cudaStreamWaitEvent", event);
  CUstream_st* target = resolve_stream(stream);
  if (!target) return api_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: the stream is not a live stream");
  if (!event->last) return cudaSuccess;  // waiting for a never-recorded event waits for nothing
  std::shared_ptr<Record> record = event->last;
  enqueue_on(target, "cudaStreamWaitEvent", [record] { complete(*record); });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  RuntimeLock lock(runtime_mutex());
  if (!is_live(event)) return unknown_event("cudaEventSynchronize", event);
  count_synchronization();
  return event->last ? complete(*event->last) : cudaSuccess;
}

// Like cudaStreamQuery: work runs only when waited for, so the query runs it rather than report
// "not ready" to a polling loop for ever.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  RuntimeLock lock(runtime_mutex());
  if (!is_live(event)) return unknown_event("cudaEventQuery", event);
  return event->last ? complete(*event->last) : cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  RuntimeLock lock(runtime_mutex());
  if (!milliseconds) return api_error(cudaErrorInvalidValue, "cudaEventElapsedTime: the result pointer is null");
  if (!is_live(start)) return unknown_event("cudaEventElapsedTime", start);
  if (!is_live(end)) return unknown_event("cudaEventElapsedTime", end);
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return api_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was created with cudaEventDisableTiming");
  if (!start->last || !end->last)
    return api_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never recorded");
  if (!start->last->completed || !end->last->completed)
    return api_error(cudaErrorNotReady, "cudaEventElapsedTime: an event's record has not run yet (synchronise first)");
  *milliseconds = std::chrono::duration<float, std::milli>(end->last->time - start->last->time).count();
  return cudaSuccess;
}

}  // extern "C"
