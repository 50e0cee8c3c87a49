// Host code that touches device memory gets SIGSEGV (device_memory.cpp keeps the range PROT_NONE
// outside device work). A bare "Segmentation fault" would not say why, so a SIGSEGV whose address
// lies in the device range first prints one line naming the address and the likely cause, and a
// backtrace to the host code that did it; then the default action ends the process as before.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {

// Set once, before the handler is installed; read-only afterwards, so safe in a signal handler.
const char* device_base = nullptr;
size_t device_bytes = 0;

void report_host_access(int, siginfo_t* info, void*) {
  const char* address = static_cast<const char*>(info->si_addr);
  if (address >= device_base && address < device_base + device_bytes) {
    char line[256];
    const int length = std::snprintf(line, sizeof line,
                                     "t6 emulated GPU: host code accessed device memory at %p: a device pointer "
                                     "dereferenced on the host, or a host-only op given a device tensor\n",
                                     info->si_addr);
    if (length > 0) (void)!write(STDERR_FILENO, line, size_t(length));
    void* frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
  }
  // SA_RESETHAND restored the default action: returning re-runs the access, which ends the process.
}

}  // namespace

void install_host_access_report(const void* base, size_t bytes) {
  device_base = static_cast<const char*>(base);
  device_bytes = bytes;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = report_host_access;
  action.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
}

}  // namespace t6::cuda_emu
