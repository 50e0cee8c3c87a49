// ctest-labels: gpu
// ctest-timeout: 600
// t6_pretrain's step on the CUDA backend (one rank; under the emulated GPU in CI), against the CPU
// backend on a tiny T6 shaped like configs/t6-demo (Rq 6, R 2, two micro-batches per step): the
// losses stay within 2% of the CPU run's at every step; the same CUDA run twice gives the same
// bits; a CUDA run stopped and resumed continues bit for bit; a CUDA checkpoint continues on the
// CPU backend and a CPU one on CUDA within 2% of the straight run. The emulated runtime counts that
// a steady step allocates no device or pinned memory and waits for the device exactly once. The bf16
// copy of the weights that the matmuls read is the masters rounded, after initialise and after every
// AdamW update, and the planned device memory (--plan, the start-up check) is what the arenas take. Bad
// input: a model whose state does not fit the GPU is refused before any step, saying how much is
// needed and how much is free. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "core/bf16.h"
#include "core/device_memory.h"
#include "kernels/device.h"
#include "run/memory_plan.h"
#include "run/trainer.h"
#include "train/distributed_optimizer.h"
#ifdef T6_CUDA_EMU
#include "cuda_emu_counters.h"
#endif

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSteps = 4, kStopStep = 2;  // an emulated step takes seconds

RunConfig config_of(const std::string& backend, int64_t max_steps, ModelKind kind = ModelKind::T6) {
  RunConfig config = tiny_run_config(kind, shared_corpus());
  config.parallel.backend = backend;
  config.parallel.communicator = "auto";
  config.train.global_batch_size = 4;
  config.train.micro_batch_size = 2;
  config.train.max_steps = max_steps;
  config.train.lr_decay_steps = kSteps;  // stopping early keeps the schedule
  return config;
}

StepRecords run(const RunConfig& config, const std::string& run_dir, ResumeMode resume = ResumeMode::from_config) {
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  Trainer trainer(config, grid, run_dir, resume);
  trainer.run();
  return read_step_records(run_dir);
}

// The run of `backend` stopped at kStopStep, then resumed on `resumed_on` to kSteps.
StepRecords stopped_and_resumed(const std::string& backend, const std::string& resumed_on, const std::string& label) {
  const std::string run_dir = scratch_dir(label).string();
  run(config_of(backend, kStopStep), run_dir);
  return run(config_of(resumed_on, kSteps), run_dir, ResumeMode::latest);
}

void expect_within(const std::vector<double>& actual, const std::vector<double>& expected, double relative,
                   const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    // NaN-aware: a NaN fails the comparison instead of passing it.
    EXPECT_TRUE(std::fabs(actual[i] - expected[i]) <= relative * std::fabs(expected[i]))
        << what << ", step " << i + 1 << ": " << actual[i] << " against " << expected[i];
  }
}

// Elements of the bf16 copy that are not the fp32 masters rounded to nearest even (NaN-aware: a NaN
// master or copy counts), over the whole padded buffer.
int64_t stale_copy_elements(const ModelWeights& weights) {
  const int64_t n = weights.padded_numel();
  std::vector<float> masters(size_t(n), 0.0f);
  std::vector<uint16_t> copy(size_t(n), 0);
  copy_tensor(Tensor(masters.data(), {n}, DType::F32), weights.padded_params());
  copy_tensor(Tensor(copy.data(), {n}, DType::BF16), weights.padded_matmul_copy());
  int64_t stale = 0;
  for (int64_t i = 0; i < n; ++i) stale += !(std::isfinite(masters[i]) && copy[i] == float_to_bf16_bits(masters[i]));
  return stale;
}

class DeviceTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU (or a build without CUDA): the device step is not run";
  }
  // Both straight runs, shared by the tests of this binary.
  static const StepRecords& straight(const std::string& backend) {
    static std::map<std::string, StepRecords> runs;
    auto found = runs.find(backend);
    if (found == runs.end())
      found = runs.emplace(backend, run(config_of(backend, kSteps), scratch_dir("straight-" + backend).string())).first;
    return found->second;
  }
};

TEST_F(DeviceTraining, CudaLossesStayWithinTwoPercentOfCpu) {
  const StepRecords& cpu = straight("cpu");
  const StepRecords& cuda = straight("cuda");
  ASSERT_EQ(cuda.steps.size(), size_t(kSteps));
  expect_within(cuda.losses, cpu.losses, 0.02, "CUDA against CPU loss");
  for (double norm : cuda.grad_norms) EXPECT_TRUE(std::isfinite(norm) && norm > 0) << norm;
  // Training moves the loss: a step that updated nothing would pass the comparison above only at step 1.
  EXPECT_LT(cuda.losses.back(), cuda.losses.front());
}

// The other kinds whose ops all have CUDA twins, over two steps.
TEST_F(DeviceTraining, OtherKindsStayWithinTwoPercentOfCpu) {
  for (ModelKind kind : {ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa}) {
    const std::string name = model_kind_name(kind);
    const StepRecords cpu = run(config_of("cpu", 2, kind), scratch_dir("cpu-" + name).string());
    const StepRecords cuda = run(config_of("cuda", 2, kind), scratch_dir("cuda-" + name).string());
    expect_within(cuda.losses, cpu.losses, 0.02, name + ": CUDA against CPU loss");
    expect_within(cuda.grad_norms, cpu.grad_norms, 0.02, name + ": CUDA against CPU gradient norm");
  }
}

TEST_F(DeviceTraining, SameCudaRunTwiceIsBitIdentical) {
  const StepRecords again = run(config_of("cuda", kSteps), scratch_dir("again").string());
  EXPECT_EQ(again.losses, straight("cuda").losses);
  EXPECT_EQ(again.grad_norms, straight("cuda").grad_norms);
}

TEST_F(DeviceTraining, CudaResumeContinuesBitForBit) {
  const StepRecords resumed = stopped_and_resumed("cuda", "cuda", "cuda-cuda");
  EXPECT_EQ(resumed.steps.size(), size_t(kSteps));
  EXPECT_EQ(resumed.losses, straight("cuda").losses);
  EXPECT_EQ(resumed.grad_norms, straight("cuda").grad_norms);
}

TEST_F(DeviceTraining, CudaCheckpointContinuesOnCpuAndCpuOnCuda) {
  expect_within(stopped_and_resumed("cuda", "cpu", "cuda-cpu").losses, straight("cpu").losses, 0.02,
                "CUDA checkpoint resumed on the CPU");
  expect_within(stopped_and_resumed("cpu", "cuda", "cpu-cuda").losses, straight("cuda").losses, 0.02,
                "CPU checkpoint resumed on CUDA");
}

TEST_F(DeviceTraining, SteadyStepAllocatesNothingAndSynchronisesOnce) {
#ifndef T6_CUDA_EMU
  GTEST_SKIP() << "the allocation and synchronisation counters are the emulated GPU's";
#else
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  Trainer trainer(config_of("cuda", 4), grid, scratch_dir("counted").string());
  // The hook runs after each step's backward: between two calls lies exactly one whole step (its
  // optimizer part, logging and stop check, then the next one's batch, forward and backward).
  std::vector<cuda_emu::RuntimeCounters> at_hook;
  trainer.set_gradient_hook([&](int64_t, ModelWeights&) { at_hook.push_back(cuda_emu::runtime_counters()); });
  trainer.run();
  ASSERT_EQ(at_hook.size(), 4u);
  // From step 2 on: step 1 makes the ops' first scratch and cuBLASLt plans.
  for (size_t step = 2; step < at_hook.size(); ++step) {
    EXPECT_EQ(at_hook[step].allocations - at_hook[step - 1].allocations, 0u) << "step " << step;
    EXPECT_EQ(at_hook[step].synchronizations - at_hook[step - 1].synchronizations, 1u) << "step " << step;
  }
#endif
}

// A copy AdamW forgot would train the masters while every matmul kept the initial weights.
TEST_F(DeviceTraining, AdamWRewritesTheBf16CopyOfTheWeights) {
  ModelWeights weights(config_of("cuda", 1).model, 0, 1, 1, true, Device::CUDA);
  ASSERT_EQ(weights.matmul_copy_bytes(), size_t(weights.padded_numel()) * 2);
  weights.initialise(7);
  EXPECT_EQ(stale_copy_elements(weights), 0) << "after initialise";
  const int64_t n = weights.padded_numel();
  std::vector<float> grads(static_cast<size_t>(n)), before(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) grads[size_t(i)] = 0.01f * std::sin(0.37f * float(i));
  copy_tensor(weights.padded_grads(), Tensor(grads.data(), {n}, DType::F32));
  copy_tensor(Tensor(before.data(), {n}, DType::F32), weights.padded_params());
  DistributedOptimizer optimizer(weights, AdamWSettings{}, {}, {}, false);  // one rank: no groups
  for (int step = 0; step < 2; ++step) optimizer.apply(1e-2f, 0.0, 1.0);
  EXPECT_EQ(stale_copy_elements(weights), 0) << "after two AdamW steps";
  // The steps moved the weights by far more than bf16's rounding, so a stale copy would show.
  std::vector<float> after(static_cast<size_t>(n));
  copy_tensor(Tensor(after.data(), {n}, DType::F32), weights.padded_params());
  int64_t moved = 0;
  for (int64_t i = 0; i < n; ++i) moved += float_to_bf16_bits(after[size_t(i)]) != float_to_bf16_bits(before[size_t(i)]);
  EXPECT_GT(moved, n / 2);
}

// plan_rank_memory's device figures (--plan's "memory CUDA" line and the GPU-room check) are the
// bytes the device arenas take: fp32 masters with their bf16 copy, and activations with bf16
// matmul inputs, so that what is saved for backward takes less than on the CPU backend (the scratch
// need not: here the head's bf16 copy of a chunk of dlogits, 32 rows of 50304, outgrows the layers').
TEST_F(DeviceTraining, PlannedDeviceMemoryIsWhatTheArenasTake) {
  for (ModelKind kind : {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_gqa}) {
    SCOPED_TRACE(model_kind_name(kind));
    const RunConfig config = config_of("cuda", 1, kind);
    const RankMemory planned = plan_rank_memory(config, 1, Device::CUDA);
    const LanguageModel model(config.model, config.train.micro_batch_size, config.train.seq_len, nullptr, 1, true,
                              Device::CUDA);
    const ModelWeights& weights = model.weights();
    EXPECT_EQ(planned.weights, double(weights.param_bytes() + weights.matmul_copy_bytes()));
    EXPECT_EQ(planned.gradients, double(weights.grad_bytes()));
    EXPECT_EQ(planned.activations, double(model.activation_bytes()));
    EXPECT_EQ(planned.scratch, double(model.scratch_bytes()));
    const RankMemory cpu = plan_rank_memory(config, 1, Device::CPU);
    EXPECT_LT(planned.activations - planned.scratch, cpu.activations - cpu.scratch);
  }
}

// MFU on the CUDA backend is over the GPU's bf16 GEMM rate: the CPU's SGEMM rate would put it in
// the thousands of percent on a real GPU.
TEST_F(DeviceTraining, MfuIsMeasuredAgainstTheGpusGemmRate) {
  const fs::path run_dir = scratch_dir("peak");
  run(config_of("cuda", 1), run_dir.string());
  std::ifstream console(run_dir / "console.log");
  const std::string log((std::istreambuf_iterator<char>(console)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("(measured bf16 GEMM on the GPU)"), std::string::npos) << log;
  EXPECT_EQ(log.find("measured SGEMM"), std::string::npos) << log;
}

TEST_F(DeviceTraining, ModelTooLargeForTheGpuIsRefusedBeforeAnyStep) {
  RunConfig config = config_of("cuda", kSteps);
  config.model.n_embd = 1 << 17;  // over 7G parameters: more than 100 GiB with gradients and moments
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string run_dir = scratch_dir("too-large").string();
  expect_mentions(error_of([&] { Trainer trainer(config, grid, run_dir); }), {"MiB on its GPU", "MiB are free"});
  EXPECT_FALSE(fs::exists(fs::path(run_dir) / "metrics.jsonl"));
}

}  // namespace
