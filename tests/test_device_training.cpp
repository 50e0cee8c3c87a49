// ctest-labels: gpu
// ctest-timeout: 600
// t6_pretrain's step on the CUDA backend (one rank; under the emulated GPU in CI), against the CPU
// backend, for 30 steps of configs/t6-demo in miniature (T6 with its ranks Rq 6, R 2 and six heads
// of H·D = 2·n_embd; two layers, n_embd 48, 16-token sequences, two micro-batches per step; on the
// Shakespeare corpus as characters, so that the vocab is 128 and a step is the layers' work): the
// losses stay within 2% of the CPU run's at every step; the same CUDA run twice gives the same
// bits; a CUDA run stopped and resumed continues bit for bit; a CUDA checkpoint continues on the
// CPU backend and a CPU one on CUDA within 2% of the straight run. Every other model kind, MLA
// included, trains a few steps on CUDA within 2% of the CPU (losses and gradient norms), and every
// parameter's gradient of step 3 is within 2.5% of the CPU's in norm. The emulated runtime counts
// that a steady step allocates no device or pinned memory and waits for the device exactly once.
// MFU is over the GPU's GEMM rate. A NaN in a device gradient is counted on the device, in the
// gradient norm's pass: the step is skipped and metrics.jsonl counts the one element. The bf16 copy
// of the weights that the matmuls read is the masters rounded, after initialise and after every
// AdamW update, and the planned device memory (--plan, the start-up check) is what the arenas take.
// Bad input: a model whose state does not fit the GPU is refused before any step, saying how much
// is needed and how much is free. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

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

constexpr int64_t kSteps = 30, kStopStep = 12;

const std::string& character_corpus() {
  static const std::string path = write_shakespeare_characters((scratch_dir("characters") / "shakespeare").string());
  return path;
}

// configs/t6-demo in miniature: its kind, ranks (Rq 6, R 2), six heads whose H·D is twice n_embd
// (demo 6 × 64 against 192, here 6 × 16 against 48) and gradient accumulation (two micro-batches per
// step), with two layers instead of four, 16-token sequences instead of 128 and characters instead
// of GPT-2 tokens (an emulated step takes a fraction of a second instead of seconds).
RunConfig demo_shaped_config(const std::string& backend, int64_t max_steps) {
  RunConfig config = tiny_run_config(ModelKind::T6, character_corpus());
  config.model.n_layer = 2;
  config.model.n_embd = 48;
  config.model.n_head = 6;
  config.model.head_dim = 16;
  config.model.q_rank = 6;
  config.model.rank = 2;
  config.model.vocab_size = kCharacterVocab;
  config.parallel.backend = backend;
  config.parallel.communicator = "auto";
  config.train.seq_len = 16;
  config.train.global_batch_size = 4;
  config.train.micro_batch_size = 2;
  config.train.lr = 2e-3;  // the demo's schedule over 30 steps instead of 150
  config.train.min_lr = 2e-4;
  config.train.warmup_steps = 2;
  config.train.max_steps = max_steps;
  config.train.lr_decay_steps = kSteps;  // stopping early keeps the schedule
  config.validate();
  return config;
}

// A tiny model of `kind` (tiny_run_config's, over the characters), `max_steps` steps.
RunConfig kind_config(const std::string& backend, ModelKind kind, int64_t max_steps) {
  RunConfig config = tiny_run_config(kind, character_corpus());
  config.model.vocab_size = kCharacterVocab;
  config.parallel.backend = backend;
  config.parallel.communicator = "auto";
  config.train.global_batch_size = 4;
  config.train.micro_batch_size = 2;
  config.train.max_steps = max_steps;
  config.validate();
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
  run(demo_shaped_config(backend, kStopStep), run_dir);
  return run(demo_shaped_config(resumed_on, kSteps), run_dir, ResumeMode::latest);
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
      found = runs.emplace(backend, run(demo_shaped_config(backend, kSteps), scratch_dir("straight-" + backend).string()))
                  .first;
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

// Step 3's gradients are the first with attention in them: the c_projs start at zero, which stops
// every gradient inside attention, and step 1's learning rate is 0, so step 2 is the first update.
// Later steps drift apart more (AdamW magnifies the backends' rounding differences in near-zero
// gradients) without checking more of the backward.
constexpr int64_t kGradientStep = 3;

// A run's records and its gradients of step kGradientStep (on the host, whichever backend).
struct RunWithGradients {
  StepRecords records;
  std::vector<float> gradients;
  std::vector<LocalParam> params;
};

RunWithGradients run_keeping_gradients(const RunConfig& config, const std::string& run_dir) {
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  Trainer trainer(config, grid, run_dir);
  RunWithGradients result;
  trainer.set_gradient_hook([&](int64_t step, ModelWeights& weights) {
    if (step != kGradientStep) return;
    const Tensor grads = weights.grads();
    result.gradients.resize(size_t(grads.numel()));
    copy_tensor(Tensor(result.gradients.data(), {grads.numel()}, DType::F32), grads);
    result.params = weights.table().params();
  });
  trainer.run();
  result.records = read_step_records(run_dir);
  return result;
}

// Every parameter's gradient within `relative` of `expected`'s in the norm of the difference,
// ‖actual − expected‖ ≤ relative · ‖expected‖, parameter by parameter: the whole model's norm would
// hide a wrong gradient of a small parameter (MLA's shared k_pe rows). Not element by element:
// bf16's roundings (and AdamW's first two updates, which they tilt) move single elements of a few
// percent of the largest, at random signs, while a wrong backward moves whole rows or heads.
void expect_gradients_within(const RunWithGradients& actual, const RunWithGradients& expected, double relative,
                             const std::string& what) {
  ASSERT_EQ(actual.gradients.size(), expected.gradients.size()) << what;
  for (const LocalParam& entry : expected.params) {
    const float* want = expected.gradients.data() + entry.flat_offset;
    const float* got = actual.gradients.data() + entry.flat_offset;
    double difference = 0, reference = 0;
    for (int64_t i = 0; i < entry.numel(); ++i) {
      const double error = double(got[i]) - double(want[i]);
      difference += error * error;  // NaN-aware: a NaN makes the sum NaN, and the check below fails
      reference += double(want[i]) * double(want[i]);
    }
    const double ratio = std::sqrt(difference / reference);
    EXPECT_TRUE(ratio <= relative) << what << ": " << entry.spec.name << ": ‖difference‖ / ‖expected‖ = " << ratio;
  }
}

// Every other kind, over five steps (the first at learning rate 0, the other four updating).
TEST_F(DeviceTraining, OtherKindsFollowTheCpu) {
  constexpr int64_t kKindSteps = 5;
  for (ModelKind kind : {ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa, ModelKind::llama_mla}) {
    const std::string name = model_kind_name(kind);
    const RunWithGradients cpu =
        run_keeping_gradients(kind_config("cpu", kind, kKindSteps), scratch_dir("cpu-" + name).string());
    const RunWithGradients cuda =
        run_keeping_gradients(kind_config("cuda", kind, kKindSteps), scratch_dir("cuda-" + name).string());
    ASSERT_EQ(cuda.records.steps.size(), size_t(kKindSteps)) << name;
    expect_within(cuda.records.losses, cpu.records.losses, 0.02, name + ": CUDA against CPU loss");
    expect_within(cuda.records.grad_norms, cpu.records.grad_norms, 0.02, name + ": CUDA against CPU gradient norm");
    ASSERT_FALSE(cpu.gradients.empty()) << name << ": no gradients kept";  // else the check below holds vacuously
    // bf16's roundings leave up to 1.7% here (MLA's layer-1 c_fc2, in the emulation); MLA's dk_pe
    // summed over one head only gives 3.5% on kv_a_proj_with_mqa. test_device_conformance checks every
    // gradient from the same weights at bf16's element-wise bound, and fails that plant at 34u of 16u.
    expect_gradients_within(cuda, cpu, 0.025, name + str(": CUDA against CPU gradient of step ", kGradientStep));
    EXPECT_LT(cuda.records.losses.back(), cuda.records.losses.front()) << name << ": training moves the loss";
  }
}

TEST_F(DeviceTraining, SameCudaRunTwiceIsBitIdentical) {
  const StepRecords again = run(demo_shaped_config("cuda", kSteps), scratch_dir("again").string());
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
  Trainer trainer(demo_shaped_config("cuda", 4), grid, scratch_dir("counted").string());
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
  ModelWeights weights(demo_shaped_config("cuda", 1).model, 0, 1, 1, true, Device::CUDA);
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
// need not: the head's bf16 copy of a chunk of dlogits can outgrow the layers').
TEST_F(DeviceTraining, PlannedDeviceMemoryIsWhatTheArenasTake) {
  for (ModelKind kind : {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_gqa, ModelKind::llama_mla}) {
    SCOPED_TRACE(model_kind_name(kind));
    const RunConfig config = kind_config("cuda", kind, 1);
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
  run(demo_shaped_config("cuda", 1), run_dir.string());
  std::ifstream console(run_dir / "console.log");
  const std::string log((std::istreambuf_iterator<char>(console)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("(measured bf16 GEMM on the GPU)"), std::string::npos) << log;
  EXPECT_EQ(log.find("measured SGEMM"), std::string::npos) << log;
}

TEST_F(DeviceTraining, NonFiniteDeviceGradientIsCountedAndSkipsTheStep) {
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string run_dir = scratch_dir("cuda-skip").string();
  Trainer trainer(demo_shaped_config("cuda", 4), grid, run_dir);
  trainer.set_gradient_hook([](int64_t step, ModelWeights& weights) {
    if (step != 3) return;
    float nan = std::numeric_limits<float>::quiet_NaN();
    copy_tensor(weights.grads().rows(3, 4), Tensor(&nan, {1}, DType::F32));
  });
  trainer.run();
  EXPECT_EQ(trainer.optimizer().adamw().steps_taken(), 3);
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::vector<int64_t> skipped, non_finite_grads;
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (!record.value("skipped", false)) continue;
    skipped.push_back(record["step"]);
    non_finite_grads.push_back(record.value("non_finite_grads", int64_t(-1)));
  }
  EXPECT_EQ(skipped, std::vector<int64_t>{3});
  EXPECT_EQ(non_finite_grads, std::vector<int64_t>{1});
}

TEST_F(DeviceTraining, ModelTooLargeForTheGpuIsRefusedBeforeAnyStep) {
  RunConfig config = demo_shaped_config("cuda", kSteps);
  config.model.n_embd = 1 << 15;  // 17G parameters, mostly the MLPs': over 250 GiB with gradients and moments
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string run_dir = scratch_dir("too-large").string();
  expect_mentions(error_of([&] { Trainer trainer(config, grid, run_dir); }), {"MiB on its GPU", "MiB are free"});
  EXPECT_FALSE(fs::exists(fs::path(run_dir) / "metrics.jsonl"));
}

}  // namespace
