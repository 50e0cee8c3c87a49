#include "run/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/corpus_index.h"
#include "data/shard_reader.h"
#include "model/language_model.h"
#include "model/param_table.h"
#include "train/batch_split.h"

namespace t6 {

namespace {

// The shards of the corpus at `path`, which bound how many are ever open (a corpus of 4 shards never
// opens 64); -1 where there is none to read yet, as for a --plan without a corpus. A corpus that
// cannot be read is the token loader's to report, with its own message.
int64_t readable_corpus_shards(const std::string& path) {
  if (path.empty()) return -1;
  try {
    return int64_t(read_corpus_index(path).shards.size());
  } catch (const std::exception&) {
    return -1;
  }
}

constexpr double kBytesPerToken = sizeof(int32_t);

std::string human_bytes(double bytes) {
  const double kib = bytes / 1024, mib = kib / 1024;
  if (mib >= 1024) return str(std::fixed, std::setprecision(2), mib / 1024, " GiB");
  return mib >= 1 ? str(std::fixed, std::setprecision(1), mib, " MiB") : str(std::fixed, std::setprecision(1), kib, " KiB");
}

// Each category, its name and the config keys that size it.
struct Category {
  const char* name;
  double RankMemory::*bytes;
  const char* keys;
};

const std::vector<Category>& categories() {
  static const std::vector<Category> list = {
      {"weights", &RankMemory::weights, "model.n_embd, model.n_layer or model.vocab_size, or raise parallel.tp"},
      {"gradients", &RankMemory::gradients, "model.n_embd, model.n_layer or model.vocab_size, or raise parallel.tp"},
      {"AdamW", &RankMemory::optimizer,
       "model.n_embd, model.n_layer or model.vocab_size, or set parallel.zero1 = true"},
      {"activations", &RankMemory::activations, "train.micro_batch_size or train.seq_len"},
      {"batches", &RankMemory::batches, "train.global_batch_size or train.seq_len"},
      {"prefetch", &RankMemory::prefetch, "train.global_batch_size or train.seq_len, or set data.prefetch = false"},
      {"data", &RankMemory::data, "data.max_open_shards"},
  };
  return list;
}

}  // namespace

double RankMemory::total() const {
  double sum = 0;
  for (const Category& category : categories()) sum += this->*category.bytes;
  return sum;
}

std::string RankMemory::describe() const {
  std::string text = human_bytes(total()) + " (";
  for (const Category& category : categories())
    text += str(category.name == categories().front().name ? "" : ", ", category.name, " ",
                human_bytes(this->*category.bytes));
  return text + str("; activations include ", human_bytes(scratch), " of layer scratch)");
}

RankMemory plan_rank_memory(const RunConfig& config, int world_size, Device device) {
  const TrainConfig& train = config.train;
  const int tp = int(std::max<int64_t>(1, config.parallel.tp));
  const int dp = std::max(1, world_size / tp);
  const bool zero1 = config.parallel.zero1 && dp > 1;
  // DP rank 0 holds the largest share of the batch, and so the largest micro-batch (train/batch_split.h).
  const BatchShare share = batch_share(train, 0, dp);
  RankMemory memory;
  for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
    const double local = double(ParamTable(config.model, tp_rank, tp).local_numel());
    const double padded = zero1 ? std::ceil(local / dp) * dp : local;
    memory.gradients = std::max(memory.gradients, padded * sizeof(float));
    // The CUDA backend's bf16 copy covers the whole padded buffer: ZeRO-1 gathers it on every rank.
    memory.weights = memory.gradients * (device == Device::CUDA ? 1.5 : 1.0);
    memory.optimizer = std::max(memory.optimizer, 2 * (zero1 ? padded / dp : local) * sizeof(float));
    const LanguageModel::ActivationPlan activations =
        LanguageModel::planned_activations(config.model, share.micro_batch, train.seq_len, tp_rank, tp, device);
    if (double(activations.bytes) > memory.activations) {
      memory.activations = double(activations.bytes);
      memory.scratch = double(activations.scratch_bytes);
    }
  }
  // Inputs and targets of this rank's share of the global batch.
  memory.batches = 2 * double(share.sequences) * double(train.seq_len) * kBytesPerToken;
  if (device == Device::CUDA) return memory;  // the prefetched batch and the loader live on the host
  memory.prefetch = config.data.prefetch ? memory.batches : 0;
  const int64_t corpus_shards = readable_corpus_shards(config.data.path);
  const int64_t open_shards =
      corpus_shards < 0 ? config.data.max_open_shards : std::min<int64_t>(config.data.max_open_shards, corpus_shards);
  memory.data = double(train.seq_len + 1) * kBytesPerToken + double(open_shards) * double(ShardReader::kChunkCacheBytes);
  return memory;
}

void check_rank_memory_fits(const RankMemory& memory, double machine_bytes, int ranks_on_node) {
  if (memory.total() * ranks_on_node <= machine_bytes) return;
  const Category& largest = *std::max_element(categories().begin(), categories().end(),
                                               [&](const Category& a, const Category& b) {
                                                 return memory.*a.bytes < memory.*b.bytes;
                                               });
  fail(str("a rank of this run needs ", memory.describe(), " of host memory; ", ranks_on_node,
           ranks_on_node == 1 ? " rank" : " ranks", " on this node need more than its ", human_bytes(machine_bytes),
           ", so nothing was allocated; the largest part is ", largest.name, ": lower ", largest.keys));
}

}  // namespace t6
