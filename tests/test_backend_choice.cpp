// parallel.backend / parallel.communicator resolution (parallel/backend_choice.h) for every kind of
// rank: without a CUDA build, without a GPU, with more ranks on a node than GPUs, with a caller that
// has no CUDA path, and the auto choices. Pure functions of the rank's hardware: no GPU needed.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "parallel/backend_choice.h"
#include "parallel/cuda_training_status.h"

using namespace t6;
using t6::testing::error_of;

namespace {

BackendChoice resolve(const std::string& backend, const std::string& communicator, RankHardware hardware) {
  return resolve_backend({backend, communicator}, hardware);
}

constexpr RankHardware kCpuOnlyBuild{false, 0, 0, true};
constexpr RankHardware kNoGpu{true, 0, 0, true};
constexpr RankHardware kGpu{true, 0, 1, true};
constexpr RankHardware kThirdRankOfTwoGpus{true, 2, 2, true};
constexpr RankHardware kGpuButCallerOnCpu{true, 0, 1, false};

}  // namespace

TEST(BackendChoice, AutoPicksCudaAndNcclWhereTheRankHasAGpu) {
  const BackendChoice choice = resolve("auto", "auto", {true, 1, 2, true});
  EXPECT_EQ(choice.backend, Backend::cuda);
  EXPECT_EQ(choice.communicator, CommunicatorKind::nccl);
  EXPECT_EQ(choice.cuda_device, 1) << "one rank per GPU: the device is the node-local rank";
}

TEST(BackendChoice, AutoStaysOnTheCpuWithMpiWithoutAUsableGpu) {
  for (const RankHardware& hardware : {kCpuOnlyBuild, kNoGpu, kThirdRankOfTwoGpus, kGpuButCallerOnCpu}) {
    const BackendChoice choice = resolve("auto", "auto", hardware);
    EXPECT_EQ(choice.backend, Backend::cpu);
    EXPECT_EQ(choice.communicator, CommunicatorKind::mpi);
    EXPECT_EQ(choice.cuda_device, -1);
  }
  EXPECT_NE(resolve("auto", "auto", kGpuButCallerOnCpu).note.find("no CUDA training path"), std::string::npos)
      << "the start-up table must say why a GPU is left idle";
  EXPECT_TRUE(resolve("auto", "auto", kGpuButCallerOnCpu).gpus_left_idle) << "rank 0 warns loudly";
  EXPECT_TRUE(resolve("auto", "auto", {false, 0, 2, false}).gpus_left_idle)
      << "a build without CUDA on a GPU node leaves the GPUs idle too";
  EXPECT_FALSE(resolve("auto", "auto", kNoGpu).gpus_left_idle);
  EXPECT_FALSE(resolve("cpu", "auto", kGpuButCallerOnCpu).gpus_left_idle) << "cpu asked for: nothing to warn about";
}

TEST(BackendChoice, CudaWithoutCudaBuildOrGpuIsAnErrorSayingWhatToChange) {
  const std::string no_build = error_of([] { resolve("cuda", "auto", kCpuOnlyBuild); });
  EXPECT_NE(no_build.find("built without CUDA"), std::string::npos) << no_build;
  EXPECT_NE(no_build.find("-DT6_CUDA=ON"), std::string::npos) << no_build;
  const std::string no_gpu = error_of([] { resolve("cuda", "auto", kNoGpu); });
  EXPECT_NE(no_gpu.find("node-local rank 0 has no GPU"), std::string::npos) << no_gpu;
  EXPECT_NE(no_gpu.find("sees none"), std::string::npos) << no_gpu;
  const std::string too_many_ranks = error_of([] { resolve("cuda", "auto", kThirdRankOfTwoGpus); });
  EXPECT_NE(too_many_ranks.find("node-local rank 2 has no GPU: this node shows 2"), std::string::npos) << too_many_ranks;
  const std::string no_path = error_of([] { resolve("cuda", "auto", kGpuButCallerOnCpu); });
  EXPECT_NE(no_path.find("no CUDA training path"), std::string::npos) << no_path;
}

TEST(BackendChoice, CudaWithoutATrainingPathGivesThatReasonFirstOnAnyMachine) {
  // Not "no GPU" or "built without CUDA": neither would help while this run has no CUDA path.
  for (const RankHardware& hardware : {RankHardware{false, 0, 0, false}, RankHardware{true, 0, 0, false},
                                       RankHardware{true, 2, 2, false}, kGpuButCallerOnCpu}) {
    const std::string message = error_of([&] { resolve("cuda", "auto", hardware); });
    EXPECT_EQ(message.find("parallel.backend = \"cuda\": this run has no CUDA training path in this version"), 0u)
        << message;
    EXPECT_EQ(message.find("has no GPU"), std::string::npos) << message;
    EXPECT_EQ(message.find("built without CUDA"), std::string::npos) << message;
  }
}

TEST(BackendChoice, CommunicatorFollowsTheBackendUnlessSetAndNcclNeedsCuda) {
  EXPECT_EQ(resolve("cuda", "mpi", kGpu).communicator, CommunicatorKind::mpi)
      << "MPI with device buffers is how several ranks share one GPU in tests";
  EXPECT_EQ(resolve("cpu", "auto", kGpu).communicator, CommunicatorKind::mpi);
  EXPECT_EQ(resolve("cpu", "auto", kGpu).backend, Backend::cpu) << "cpu is honoured on a GPU machine";
  const std::string nccl_on_cpu = error_of([] { resolve("cpu", "nccl", kGpu); });
  EXPECT_NE(nccl_on_cpu.find("parallel.communicator = \"nccl\" needs the CUDA backend"), std::string::npos)
      << nccl_on_cpu;
}

TEST(BackendChoice, NcclInABuildWithoutItSaysSoAndWhatToSet) {
  const std::string missing = error_of([] { resolve("auto", "nccl", kCpuOnlyBuild); });
  EXPECT_EQ(missing.find("parallel.communicator = \"nccl\", but this t6 was built without CUDA and NCCL"), 0u)
      << missing;
  EXPECT_NE(missing.find("set parallel.communicator = \"mpi\""), std::string::npos) << missing;
}

TEST(BackendChoice, RanksOfTheMpiCommunicatorShareGpus) {
  // NCCL refuses two ranks on one GPU; MPI stages device buffers through host memory, so the third
  // rank of a two-GPU node takes GPU 0 again.
  const BackendChoice choice = resolve("cuda", "mpi", kThirdRankOfTwoGpus);
  EXPECT_EQ(choice.backend, Backend::cuda);
  EXPECT_EQ(choice.communicator, CommunicatorKind::mpi);
  EXPECT_EQ(choice.cuda_device, 0);
  EXPECT_EQ(resolve("cuda", "mpi", {true, 3, 1, true}).cuda_device, 0);
  EXPECT_FALSE(error_of([] { resolve("cuda", "mpi", kNoGpu); }).empty()) << "sharing needs a GPU to share";
}

TEST(BackendChoice, UnknownNamesAreRefused) {
  EXPECT_NE(error_of([] { resolve("gpu", "auto", kGpu); }).find("parallel.backend must be"), std::string::npos);
  EXPECT_NE(error_of([] { resolve("auto", "gloo", kGpu); }).find("parallel.communicator must be"), std::string::npos);
}

TEST(BackendChoice, DescriptionNamesBackendDeviceMemoryAndCommunicator) {
  BackendChoice choice = resolve("auto", "auto", kGpu);
  choice.device_name = "NVIDIA H200";
  choice.device_bytes = size_t(140) << 30;
  EXPECT_EQ(choice.describe(), "CUDA bf16/fp32 on GPU 0 (NVIDIA H200, 140 GiB), communicator NCCL");
  EXPECT_EQ(resolve("cpu", "auto", kNoGpu).describe(), "CPU fp32, communicator MPI");
}

TEST(BackendChoice, ReadmeOpeningSaysWhereTrainingRunsInTheCodesWords) {
  // The README cannot include the code's sentence, so this test keeps the two the same: change
  // cuda_training_status() as the CUDA training path grows, and the README's opening with it.
  std::ifstream file(t6::testing::source_dir() / "README.md");
  std::stringstream text;
  text << file.rdbuf();
  const std::string readme = text.str();
  const size_t first_paragraph_end = readme.find("\n\n", readme.find("\n\n") + 2);
  const std::string opening = readme.substr(0, first_paragraph_end);
  EXPECT_NE(opening.find(cuda_training_status()), std::string::npos) << opening;
  EXPECT_EQ(kTrainingStepRunsOnCuda, true) << "then reword cuda_training_status() and the README";
}
