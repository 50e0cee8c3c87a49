#include "parallel/rank_failure.h"

namespace t6 {

RankError::RankError(int rank, int world_size, const std::string& detail)
    : Error(world_size > 1 ? str("rank ", rank, ": ", detail) : detail),
      rank_(rank),
      world_size_(world_size),
      detail_(detail) {}

void AgreedFailure::raise(const std::string& suffix) const { throw RankError(rank, world_size, message + suffix); }

AgreedFailure agree_on_failure(Communicator& world, const std::string& failure) {
  // The lowest failing rank r as the maximum of size − r over the ranks (0 where a rank is fine).
  int32_t lowest = failure.empty() ? 0 : world.size() - world.rank();
  world.all_reduce(Tensor(&lowest, {1}, DType::I32), ReduceOp::Max);
  AgreedFailure agreed;
  agreed.world_size = world.size();
  if (lowest == 0) return agreed;
  agreed.rank = world.size() - lowest;
  agreed.message = broadcast_string(world, failure, agreed.rank);
  return agreed;
}

void throw_if_any_rank_failed(Communicator& world, const std::string& failure) {
  if (const AgreedFailure agreed = agree_on_failure(world, failure)) agreed.raise();
}

}  // namespace t6
