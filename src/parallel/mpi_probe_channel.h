// How the MPI communicator keeps collective_deadline.h's promise. It starts each collective
// non-blocking and waits for it here. While waiting, a rank answers "where are you?" probes from its
// peers. When a collective has waited
// parallel.timeout_s (less a short grace), the rank probes the other members of the group: those
// that answer within the grace are waiting in some collective (named in their answer); those that
// do not are late (stopped, hung in I/O or compute, or dead). It then throws one error naming the
// progress label (the step), the operation and the late ranks; run_on_every_rank aborts the world.
// A peer that failed or whose process is gone ends the wait at once instead (peer_watch.h).
#pragma once
#include <string>

#include "core/mpi_c.h"

namespace t6 {

// The control channel of one communicator: a duplicate of it on which probes and answers travel,
// registered so that a rank waiting in any collective answers probes sent over any of its groups.
class ProbeChannel {
 public:
  explicit ProbeChannel(MPI_Comm comm);  // collective over comm
  ~ProbeChannel();
  ProbeChannel(const ProbeChannel&) = delete;
  ProbeChannel& operator=(const ProbeChannel&) = delete;

  // Waits until request completes. `operation` names the collective ("all_reduce (sum) of 4 F64").
  // Throws t6::Error when the deadline passes (the request is then abandoned: the job aborts).
  void wait(MPI_Request& request, const std::string& operation);

 private:
  MPI_Comm control_;
  int rank_ = 0, size_ = 1;
};

}  // namespace t6
