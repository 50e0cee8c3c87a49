// The OpenMP wait policy of t6's tools: threads waiting at a barrier sleep (OMP_WAIT_POLICY=passive)
// unless the user chose a policy or a spin count. libgomp's default spins 300,000 iterations before
// sleeping; on cores shared with another busy process the spinning threads take the time slices the
// working thread needs, and decoding on 2 cores ran 15× slower under one competing job (issue 23).
// libgomp reads its environment once, in its initialiser, before main (and before the executable's
// .preinit_array could change it: libc installs the environment only after that runs), so the tool
// sets the variable and executes itself again; the new image's libgomp starts passive.
#pragma once
#include <unistd.h>

#include <cstdlib>

namespace t6 {

// The first call of main. Returns at once where the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (or
// after the re-execution, which set it); if /proc/self/exe cannot be executed the tool runs on with
// libgomp's default.
inline void use_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace t6
