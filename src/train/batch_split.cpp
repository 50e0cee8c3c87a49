#include "train/batch_split.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace t6 {

namespace {

int64_t share_of(int64_t global, int64_t dp_rank, int64_t dp_size) {
  return global / dp_size + (dp_rank < global % dp_size ? 1 : 0);
}

std::string list(const std::vector<int64_t>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text;
}

}  // namespace

std::vector<int64_t> workable_micro_batch_sizes(int64_t global_batch_size, int64_t dp_size) {
  // The shares are floor(G / DP) and, when DP does not divide G, that plus one: their common divisors.
  const int64_t low = global_batch_size / dp_size;
  const int64_t common = global_batch_size % dp_size == 0 ? low : std::gcd(low, low + 1);
  std::vector<int64_t> sizes;
  for (int64_t size = 1; size <= common; ++size)
    if (common % size == 0) sizes.push_back(size);
  return sizes;
}

BatchShare batch_share(const TrainConfig& train, int64_t dp_rank, int64_t dp_size) {
  const int64_t global = train.global_batch_size;
  T6_CHECK(global >= dp_size, "train.global_batch_size (", global, ") is smaller than the DP size (", dp_size,
           "): every DP rank needs at least one sequence; raise it or use fewer ranks (or a larger parallel.tp)");
  BatchShare share;
  share.sequences = share_of(global, dp_rank, dp_size);
  share.first_sequence = dp_rank * (global / dp_size) + std::min(dp_rank, global % dp_size);
  share.dp_weight = double(share.sequences * dp_size) / double(global);
  if (train.micro_batch_size == 0) {
    share.micro_batch = 1;
    for (int64_t size = std::min(share.sequences, kDerivedMicroBatchCap); size >= 1; --size)
      if (share.sequences % size == 0) {
        share.micro_batch = size;
        break;
      }
  } else {
    const std::vector<int64_t> workable = workable_micro_batch_sizes(global, dp_size);
    const bool even = global % dp_size == 0;
    const std::string shares = even ? str(global / dp_size, " sequences") : str(global / dp_size + 1, " and ", global / dp_size, " sequences");
    // Checked against the list, not this rank's share alone, so that every rank finds the same error.
    T6_CHECK(std::find(workable.begin(), workable.end(), train.micro_batch_size) != workable.end(),
             "train.micro_batch_size (", train.micro_batch_size, ") must divide each DP rank's share of train.global_batch_size (",
             global, " over DP size ", dp_size, ": ", shares, "); these work: ", list(workable),
             "; or leave train.micro_batch_size unset (0) to derive it (the largest divisor of the share up to ",
             kDerivedMicroBatchCap, ")");
    share.micro_batch = train.micro_batch_size;
  }
  share.micro_steps = share.sequences / share.micro_batch;
  return share;
}

std::string describe_batch_split(const TrainConfig& train, int64_t dp_size) {
  const auto plural = [](int64_t n, const char* word) { return str(n, " ", word, n == 1 ? "" : "es"); };
  const BatchShare first = batch_share(train, 0, dp_size);
  std::string text = str(train.global_batch_size, " × ", train.seq_len, " = ", train.global_batch_size * train.seq_len,
                         " tokens/step; ");
  const int64_t larger_ranks = train.global_batch_size % dp_size;
  if (larger_ranks == 0)
    return text + str(first.sequences, " sequences per DP rank in ", plural(first.micro_steps, "micro-batch"), " of ",
                      first.micro_batch);
  const BatchShare last = batch_share(train, dp_size - 1, dp_size);
  return text + str("DP ranks 0-", larger_ranks - 1, ": ", first.sequences, " sequences in ",
                    plural(first.micro_steps, "micro-batch"), " of ", first.micro_batch, "; ranks ", larger_ranks, "-",
                    dp_size - 1, ": ", last.sequences, " in ", last.micro_steps, " of ", last.micro_batch);
}

}  // namespace t6
