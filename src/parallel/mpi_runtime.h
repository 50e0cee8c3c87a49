// MPI start-up and shutdown for tool mains, and the one rule that keeps multi-rank jobs from hanging:
// a rank that fails prints one line and aborts the whole world.
//
//   int main(int argc, char** argv) {
//     return t6::run_mpi_tool(argc, argv, "t6_pretrain", [](int argc, char** argv) { ...; return 0; });
//   }
#pragma once
#include <functional>

namespace t6 {

using ToolBody = std::function<int(int argc, char** argv)>;

// MPI_Init_thread (FUNNELED: only the main thread calls MPI), the peer watch (peer_watch.h),
// run_on_every_rank, MPI_Finalize.
// Returns the body's exit code; a failure never returns when the world has more than one rank.
int run_mpi_tool(int argc, char** argv, const char* tool_name, const ToolBody& body);

// Runs body under an initialised MPI. A t6::Error or other exception prints one line to stderr,
//   "tool_name: error: message"            (world of one rank; then returns 1)
//   "rank R: tool_name: error: message"    (more ranks; then MPI_Abort(MPI_COMM_WORLD, 1))
// where R is the rank that failed: this one, or the one named by a RankError (rank_failure.h: an
// agreed failure, or a failure notice a peer sent, peer_watch.h). A rank failing alone first sends
// its failure notice, so the others, perhaps waiting for it in a collective, end at once instead of
// hanging. The line is printed once, by rank 0: ranks other than 0 hold theirs for 2 s, in which
// rank 0's abort ends them (an error every rank finds, or one rank 0 learnt from a notice). Only
// when rank 0 itself is gone does another rank print. A body should return non-zero only where
// every rank does; a failure on some ranks must throw.
int run_on_every_rank(const char* tool_name, const std::function<int()>& body);

// This process's rank and the size of MPI_COMM_WORLD. Unchecked: they also serve failure reports,
// which must not throw (and MPI_COMM_WORLD's default handler aborts on an error anyway).
int world_rank();
int world_size();

// This rank's place on its node (collective over MPI_COMM_WORLD, from an MPI_COMM_TYPE_SHARED split,
// so it works under mpirun and srun alike): its index there picks its GPU, and the count of ranks
// there shares out the node's CPU cores.
struct NodePlacement {
  int local_rank = 0;
  int ranks_on_node = 1;
};
NodePlacement node_placement();

}  // namespace t6
