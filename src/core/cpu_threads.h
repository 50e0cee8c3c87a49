// How many CPU threads a tool may use, checked before any is started: a count beyond what the
// machine can usefully run is a clear error instead of a crash inside OpenMP or thread creation.
#pragma once
#include <cstdint>
#include <string>

namespace t6 {

// The cores this process may run on (its affinity mask), at least 1.
int64_t available_cores();
// The machine's 1-minute load average (/proc/loadavg), 0 where it cannot be read: runnable tasks,
// ours and other jobs', averaged over the last minute.
double load_average();
// The largest accepted thread count: 8 per available core. More would only slow any t6 tool down,
// and tens of thousands (a typo) cannot be started at all.
int64_t max_cpu_threads();
// Throws "WHAT must be in [1, MAX] (8 per core; this machine has N cores), got THREADS".
void check_cpu_threads(int64_t threads, const std::string& what);
// Sets the thread count of OpenMP and of OpenBLAS, which both follow it, after checking it.
void use_cpu_threads(int64_t threads, const std::string& what);

}  // namespace t6
