#include "parallel/backend_choice.h"

#include <filesystem>

#include "core/error.h"
#include "kernels/device.h"
#include "parallel/cuda_training_status.h"
#include "parallel/rank_failure.h"

namespace t6 {

const char* backend_name(Backend backend) { return backend == Backend::cuda ? "CUDA" : "CPU"; }

const char* communicator_name(CommunicatorKind kind) { return kind == CommunicatorKind::nccl ? "NCCL" : "MPI"; }

std::string BackendChoice::describe() const {
  const std::string device =
      backend == Backend::cuda
          ? str("CUDA bf16/fp32 on GPU ", cuda_device, " (", device_name, ", ", double(device_bytes) / double(1ull << 30), " GiB)")
          : std::string("CPU fp32");
  return str(device, ", communicator ", communicator_name(communicator), note.empty() ? "" : " (" + note + ")");
}

BackendChoice resolve_backend(const BackendRequest& request, const RankHardware& hardware) {
  BackendChoice choice;
  // The MPI communicator stages device buffers through host memory, so its ranks may share GPUs
  // (DESIGN.md); NCCL refuses two ranks on one GPU.
  const bool shares_gpus = request.communicator == "mpi" && hardware.visible_gpus > 0;
  const bool gpu_for_rank = shares_gpus || hardware.local_rank < hardware.visible_gpus;
  if (request.backend == "cuda") {
    // The reason that holds on every machine first: where this run has no CUDA training path, no GPU
    // would help.
    T6_CHECK(hardware.caller_runs_on_cuda, cuda_training_refusal());
    T6_CHECK(hardware.build_has_cuda,
             "parallel.backend = \"cuda\", but this t6 was built without CUDA: rebuild with -DT6_CUDA=ON on a machine "
             "with the CUDA toolkit, or set parallel.backend = \"cpu\"");
    T6_CHECK(gpu_for_rank, "parallel.backend = \"cuda\", but node-local rank ", hardware.local_rank, " has no GPU: ",
             hardware.visible_gpus == 0 ? std::string("this process sees none")
                                        : str("this node shows ", hardware.visible_gpus, " and t6 runs one rank per GPU"),
             "; start at most as many ranks per node as GPUs, or set parallel.backend = \"cpu\"");
    choice.backend = Backend::cuda;
  } else if (request.backend == "auto") {
    if (hardware.build_has_cuda && gpu_for_rank && hardware.caller_runs_on_cuda) {
      choice.backend = Backend::cuda;
    }
    else if (hardware.visible_gpus > 0) {
      choice.note = "auto chose the CPU: this run has no CUDA training path in this version";
      choice.gpus_left_idle = true;
    }
  } else {
    T6_CHECK(request.backend == "cpu", "parallel.backend must be \"auto\", \"cpu\" or \"cuda\", got \"",
             request.backend, "\"");
  }
  if (request.communicator == "nccl") {
    T6_CHECK(hardware.build_has_cuda, "parallel.communicator = \"nccl\", but this t6 was built without CUDA and NCCL: ",
             "rebuild with -DT6_CUDA=ON on a machine with the CUDA toolkit and NCCL, or set parallel.communicator = ",
             "\"mpi\"");
    T6_CHECK(choice.backend == Backend::cuda, "parallel.communicator = \"nccl\" needs the CUDA backend (NCCL moves ",
             "device buffers), but this rank runs on the CPU; set parallel.communicator = \"mpi\" or \"auto\"");
    choice.communicator = CommunicatorKind::nccl;
  } else if (request.communicator == "auto") {
    choice.communicator = choice.backend == Backend::cuda ? CommunicatorKind::nccl : CommunicatorKind::mpi;
  } else {
    T6_CHECK(request.communicator == "mpi", "parallel.communicator must be \"auto\", \"nccl\" or \"mpi\", got \"",
             request.communicator, "\"");
  }
  if (choice.backend == Backend::cuda) choice.cuda_device = hardware.local_rank % hardware.visible_gpus;
  return choice;
}

namespace {

// The GPUs the NVIDIA driver lists on this node (one directory each), which a build without CUDA
// cannot use but must not keep quiet about.
int gpus_listed_by_driver() {
  std::error_code error;
  int count = 0;
  for (std::filesystem::directory_iterator it("/proc/driver/nvidia/gpus", error), end; !error && it != end; it.increment(error))
    ++count;
  return count;
}

}  // namespace

BackendChoice choose_backend(const BackendRequest& request, Communicator& world, int local_rank,
                             bool caller_runs_on_cuda) {
  const int visible_gpus = build_has_cuda() ? cuda_device_count() : gpus_listed_by_driver();
  const RankHardware hardware{build_has_cuda(), local_rank, visible_gpus, caller_runs_on_cuda};
  BackendChoice choice;
  std::string failure;
  try {
    choice = resolve_backend(request, hardware);
  } catch (const Error& error) {
    failure = error.what();
  }
  throw_if_any_rank_failed(world, failure);
  // auto decides on each rank's hardware, but the ranks must agree: one rank without a GPU of its
  // own (more ranks on a node than GPUs) keeps every rank on the CPU backend, with MPI.
  int32_t some_rank_on_cpu = choice.backend == Backend::cpu;
  if (request.backend == "auto") world.all_reduce(Tensor(&some_rank_on_cpu, {1}, DType::I32), ReduceOp::Max);
  if (some_rank_on_cpu && choice.backend == Backend::cuda) {
    try {
      choice = resolve_backend({"cpu", request.communicator}, hardware);
      choice.note = "auto chose the CPU: a rank of this run has no GPU of its own (more ranks on a node than GPUs)";
      choice.gpus_left_idle = true;
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  throw_if_any_rank_failed(world, failure);
  if (choice.backend == Backend::cuda) {
    cuda_select_device(choice.cuda_device);
    const CudaDeviceInfo info = cuda_device_info(choice.cuda_device);
    choice.device_name = info.name;
    choice.device_bytes = info.total_bytes;
  }
  return choice;
}

}  // namespace t6
