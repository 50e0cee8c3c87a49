// The memory plan (run/memory_plan.h) against the buffers it stands for: the activation arena of a
// real model of every kind, the weights, gradients and AdamW moments of a real ModelWeights and
// DistributedOptimizer (with and without ZeRO-1 padding), and the batch buffers of a real
// BatchPrefetcher (the resident set they add, read ahead or not); the CUDA backend's arenas (a bf16
// copy beside the masters, bf16 matmul inputs; test_device_training compares them with real device
// arenas); and the start-up check naming the key to lower.
#include <gtest/gtest.h>

#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "data/batch_prefetcher.h"
#include "model/language_model.h"
#include "run/memory_plan.h"
#include "train/distributed_optimizer.h"

using namespace t6;
using namespace t6::testing;

namespace {

// This process's resident set now (/proc/self/statm), in bytes.
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * double(sysconf(_SC_PAGESIZE));
}

TEST(MemoryPlan, ActivationsWeightsGradientsAndMomentsAreWhatTheRealBuffersTake) {
  for (const ModelKind kind :
       {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa, ModelKind::llama_mla}) {
    SCOPED_TRACE(model_kind_name(kind));
    RunConfig config = tiny_run_config(kind, "unused");
    config.train.micro_batch_size = 3;
    config.train.global_batch_size = 9;  // a multiple of the micro-batch, as the plan, like the trainer, requires
    config.train.seq_len = 20;
    const LanguageModel model(config.model, 3, 20);
    const RankMemory memory = plan_rank_memory(config, 1);
    EXPECT_EQ(memory.activations, double(model.activation_bytes()));
    EXPECT_EQ(memory.scratch, double(model.scratch_bytes()));
    EXPECT_EQ(memory.weights, double(model.weights().padded_numel()) * 4);
    EXPECT_EQ(memory.gradients, memory.weights);
    EXPECT_EQ(memory.optimizer, double(model.weights().table().local_numel()) * 8);
  }
}

TEST(MemoryPlan, ZeroOnePadsTheWeightsAndShardsTheMomentsOverDp) {
  RunConfig config = tiny_run_config(ModelKind::T6, "unused");
  config.parallel.zero1 = true;
  const int dp = 7;  // no divisor of the parameter count, so the padding shows
  const ModelWeights weights(config.model, 0, 1, dp);
  const RankMemory memory = plan_rank_memory(config, dp);
  ASSERT_NE(weights.padded_numel(), weights.table().local_numel());
  EXPECT_EQ(memory.weights, double(weights.padded_numel()) * 4);
  EXPECT_EQ(memory.optimizer, double(optimizer_state_range(weights, 3, dp, true).size()) * 8);
}

TEST(MemoryPlan, TheCudaBackendHoldsABf16CopyOfTheWeightsAndBf16MatmulInputs) {
  RunConfig config = tiny_run_config(ModelKind::T6, "unused");
  config.parallel.zero1 = true;
  const int dp = 7;
  const ModelWeights weights(config.model, 0, 1, dp);
  const RankMemory cpu = plan_rank_memory(config, dp), cuda = plan_rank_memory(config, dp, Device::CUDA);
  // Every rank's matmuls read the whole copy: ZeRO-1 shards the moments, not the copy.
  EXPECT_EQ(cuda.weights, double(weights.padded_numel()) * (4 + 2));
  EXPECT_EQ(cuda.gradients, cpu.gradients);
  EXPECT_EQ(cuda.optimizer, cpu.optimizer);
  EXPECT_LT(cuda.activations - cuda.scratch, cpu.activations - cpu.scratch);
  // The batch is on the device; what is read ahead and the loader's caches stay on the host.
  EXPECT_EQ(cuda.batches, cpu.batches);
  EXPECT_EQ(cuda.prefetch, 0.0);
  EXPECT_EQ(cuda.data, 0.0);
}

TEST(MemoryPlan, BatchesAndPrefetchAreWhatTheTrainerAndThePrefetcherAllocate) {
  RunConfig config = tiny_run_config(ModelKind::T6, write_shakespeare_corpus(scratch_dir("memory_plan").string()));
  config.train.global_batch_size = 1 << 16;  // 16 MiB of inputs and targets per DP rank of 2 at seq_len 16
  config.train.micro_batch_size = 1;
  const int dp = 2;
  const double local_tokens = double(config.train.global_batch_size / dp * config.train.seq_len);
  for (const bool prefetch : {false, true}) {
    config.data.prefetch = prefetch;
    const RankMemory memory = plan_rank_memory(config, dp);
    EXPECT_EQ(memory.batches, local_tokens * 2 * sizeof(int32_t));
    EXPECT_EQ(memory.prefetch, prefetch ? memory.batches : 0.0);
    // Measured: the trainer's batch buffers and the prefetcher (which reads one batch ahead) grow
    // the resident set by the plan.
    TokenLoader loader(config.data.path, config.train.seq_len, config.train.seed);
    {
      // The loader's shard caches (planned under `data`) fill on a first batch: not measured here.
      std::vector<int32_t> inputs(static_cast<size_t>(local_tokens)), targets(static_cast<size_t>(local_tokens));
      loader.read_train(2, 0, config.train.global_batch_size / dp, inputs.data(), targets.data());
    }
    // Large buffers straight from the kernel, so freed ones leave the resident set (glibc would
    // otherwise serve them from heap pages earlier tests left resident).
    mallopt(M_MMAP_THRESHOLD, 1 << 17);
    malloc_trim(0);
    const double before = resident_bytes();
    BatchPrefetcher prefetcher(loader, 0, config.train.global_batch_size / dp, config.train.seq_len, prefetch);
    std::vector<int32_t> inputs(static_cast<size_t>(local_tokens)), targets(static_cast<size_t>(local_tokens));
    prefetcher.take(0, inputs.data(), targets.data(), 1);
    prefetcher.wait();
    const double grown = resident_bytes() - before;
    SCOPED_TRACE(str("prefetch ", prefetch, ": the resident set grew ", grown, " bytes, planned ", memory.batches + memory.prefetch));
    EXPECT_GT(grown, 0.9 * (memory.batches + memory.prefetch));
    EXPECT_LT(grown, 1.05 * (memory.batches + memory.prefetch) + (1 << 20));
    std::cout << "prefetch " << prefetch << ": the resident set grew " << grown / (1 << 20) << " MiB, planned "
              << (memory.batches + memory.prefetch) / (1 << 20) << " MiB\n";
  }
}

TEST(MemoryPlan, ARunThatDoesNotFitIsRefusedNamingTheKeysOfItsLargestPart) {
  RunConfig config = tiny_run_config(ModelKind::T6, "unused");
  config.train.global_batch_size = int64_t(1) << 30;
  const RankMemory memory = plan_rank_memory(config, 2);
  EXPECT_EQ(memory.total(), memory.weights + memory.gradients + memory.optimizer + memory.activations + memory.batches +
                                memory.prefetch + memory.data);
  expect_mentions(error_of([&] { check_rank_memory_fits(memory, 64.0 * (1 << 30), 1); }),
                  {"a rank of this run needs ", "batches 64.00 GiB", "prefetch 64.00 GiB",
                   "largest part is batches: lower train.global_batch_size"});
  // Two ranks of half the machine each do not fit it together.
  check_rank_memory_fits(memory, memory.total(), 1);
  expect_mentions(error_of([&] { check_rank_memory_fits(memory, memory.total(), 2); }), {"2 ranks on this node"});
}

}  // namespace
