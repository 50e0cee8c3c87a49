// How a rank waiting in a collective learns that a peer will never arrive, so that the job ends in
// seconds, whatever the launcher does about it, instead of after parallel.timeout_s, which stays
// the bound for a peer that is merely slow or stopped (SIGSTOP, a hung filesystem, a long step):
//   - a rank that fails with an error tells every other rank before it ends: a failure notice on a
//     communicator of its own, read by whatever collective a rank waits in (ProbeChannel::wait);
//   - a rank whose process is gone (killed, crashed, out of memory) cannot tell anyone, so the ranks
//     on its node look: its pid no longer names the process recorded at start-up (ranks in PID
//     namespaces of their own do not watch each other). The first rank that sees it fails, and its
//     failure notice tells the ranks of other nodes.
// run_mpi_tool starts the watch after MPI_Init and ends it before MPI_Finalize; without it (tests
// that drive communicators directly) both checks are off.
#pragma once
#include <string>

namespace t6 {

void start_peer_watch();  // collective over MPI_COMM_WORLD
void end_peer_watch();

// Best effort, never throws: tells every other rank that this one failed with `message`.
void send_failure_notice(const std::string& message);

// For a rank waiting in `operation` (a collective, named for the message): throws the failing
// rank's RankError when a failure notice has arrived, or an Error naming a rank of this node whose
// process is gone. Cheap enough to call at every poll: it looks at the processes every 100 ms.
void check_peers(const std::string& operation);

}  // namespace t6
