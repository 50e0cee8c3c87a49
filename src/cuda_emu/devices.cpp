// The emulated devices: how many (T6_EMU_DEVICES), which one each host thread has selected, and the
// device-wide calls (cudaDeviceSynchronize, cudaDeviceReset).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {

thread_local int selected_device = 0;

// A malformed T6_EMU_DEVICES is a configuration error of the whole run: say so and stop, rather than
// pretend there is no GPU (callers treat a failing cudaGetDeviceCount as "no GPU" and skip).
int read_device_count() {
  const char* text = std::getenv("T6_EMU_DEVICES");
  if (!text || !*text) return 1;
  char* end = nullptr;
  const long count = std::strtol(text, &end, 10);
  if (*end != '\0' || count < 0 || count > kMaxEmulatedDevices)
    refuse_environment_setting("T6_EMU_DEVICES", text,
                               ("a device count from 0 to " + std::to_string(kMaxEmulatedDevices)).c_str());
  return int(count);
}

}  // namespace

std::recursive_mutex& runtime_mutex() {
  static auto* mutex = new std::recursive_mutex();  // never destroyed: CUDA calls happen at exit
  return *mutex;
}

int emulated_device_count() {
  static const int count = read_device_count();
  return count;
}

int current_device() { return selected_device; }

cudaError_t check_device(const char* call, int device) {
  const int count = emulated_device_count();
  if (device >= 0 && device < count) return cudaSuccess;
  return api_error(cudaErrorInvalidDevice,
                   std::string(call) + ": device " + std::to_string(device) + " does not exist: T6_EMU_DEVICES=" +
                       std::to_string(count) + " emulates " +
                       (count == 0 ? std::string("no device") : "devices 0 to " + std::to_string(count - 1)));
}

}  // namespace t6::cuda_emu

using namespace t6::cuda_emu;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return api_error(cudaErrorInvalidValue, "cudaGetDeviceCount: count is null");
  *count = emulated_device_count();
  if (*count == 0) return api_error(cudaErrorNoDevice, "cudaGetDeviceCount: T6_EMU_DEVICES=0 emulates no device");
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (const cudaError_t error = check_device("cudaSetDevice", device)) return error;
  selected_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return api_error(cudaErrorInvalidValue, "cudaGetDevice: device is null");
  if (const cudaError_t error = check_device("cudaGetDevice", selected_device)) return error;
  *device = selected_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  RuntimeLock lock(runtime_mutex());
  if (const cudaError_t error = check_device("cudaDeviceSynchronize", current_device())) return error;
  count_synchronization();
  return run_device(current_device());
}

// Clears the sticky launch failure and drops the queued work of the current device. Allocations,
// streams and events stay valid (the real reset destroys them; nothing in t6 relies on that).
cudaError_t cudaDeviceReset(void) {
  RuntimeLock lock(runtime_mutex());
  if (const cudaError_t error = check_device("cudaDeviceReset", current_device())) return error;
  discard_device_work(current_device());
  clear_sticky_fault(current_device());
  return cudaSuccess;
}

}  // extern "C"
