// Deadlines for collectives, so that a rank which stops making progress (SIGSTOP, a hung file
// system, a dead node) ends the job instead of hanging it (the NCCL watchdog's promise). These are
// the settings; the MPI communicator enforces them (mpi_probe_channel.h says how the late rank is
// found). No MPI here, so the trainer can set them without MPI headers.
#pragma once
#include <string>

namespace t6 {

// Seconds a collective may wait for its slowest rank (parallel.timeout_s; 600 until set).
void set_collective_timeout(double seconds);
double collective_timeout();

// What this rank is doing, for timeout messages and probe answers: "step 12", "saving step 12".
void set_progress_label(const std::string& label);
const std::string& progress_label();

}  // namespace t6
