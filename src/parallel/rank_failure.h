// The one rule for a failure that some ranks find and others do not (a full disk on one node, a
// checkpoint only rank 0 reads, a GPU one rank lacks): the ranks agree on it, and every rank throws
// the same RankError, the lowest failing rank's message, naming that rank. The tool's error line
// (mpi_runtime.h) is then printed once, by rank 0, as the failing rank's:
//   "rank 1: t6_pretrain: error: …/shard_tp1_dp0.h5: No space left on device (…)".
#pragma once
#include <string>

#include "core/error.h"
#include "parallel/communicator.h"

namespace t6 {

class RankError : public Error {
 public:
  // what() is "rank R: detail" in a world of several ranks, else detail.
  RankError(int rank, int world_size, const std::string& detail);
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const std::string& detail() const { return detail_; }

 private:
  int rank_, world_size_;
  std::string detail_;
};

// What the ranks agreed on: no failure (rank -1), or the lowest failing rank and its message.
struct AgreedFailure {
  int rank = -1;
  int world_size = 1;
  std::string message;
  explicit operator bool() const { return rank >= 0; }
  // Throws RankError(rank, world_size, message + suffix).
  [[noreturn]] void raise(const std::string& suffix = "") const;
};

// Collective over `world` (the ranks of the job, numbered as in the error line): `failure` is this
// rank's error, empty when it has none. Every rank gets the same answer.
AgreedFailure agree_on_failure(Communicator& world, const std::string& failure);

// agree_on_failure, then raise() on every rank when any rank failed.
void throw_if_any_rank_failed(Communicator& world, const std::string& failure);

}  // namespace t6
