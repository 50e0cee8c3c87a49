// Which backend and communicator a rank runs (DESIGN.md "The CUDA backend"): parallel.backend =
// "auto" | "cpu" | "cuda" and parallel.communicator = "auto" | "nccl" | "mpi". One rank per GPU: a
// rank's device is its node-local rank. auto picks CUDA where the build has it, the rank sees a GPU
// and the caller can run on it, and NCCL with CUDA, MPI with the CPU backend.
#pragma once
#include <cstddef>
#include <string>

#include "parallel/communicator.h"

namespace t6 {

enum class Backend { cpu, cuda };
enum class CommunicatorKind { mpi, nccl };

const char* backend_name(Backend backend);               // "CPU", "CUDA"
const char* communicator_name(CommunicatorKind kind);    // "MPI", "NCCL"

struct BackendRequest {
  std::string backend = "auto", communicator = "auto";   // as in the config
};

// What this rank can see: whether the build has CUDA, its node-local rank and the GPUs visible to it,
// and whether the caller (trainer, tool) has a CUDA path.
struct RankHardware {
  bool build_has_cuda = false;
  int local_rank = 0;
  int visible_gpus = 0;
  bool caller_runs_on_cuda = true;
};

struct BackendChoice {
  Backend backend = Backend::cpu;
  CommunicatorKind communicator = CommunicatorKind::mpi;
  int cuda_device = -1;           // the GPU of this rank, with the CUDA backend
  std::string device_name;        // "NVIDIA H200", with the CUDA backend
  size_t device_bytes = 0;
  std::string note;               // why auto chose the CPU where the rank sees a GPU; empty otherwise
  bool gpus_left_idle = false;    // auto trains on the CPU although the rank sees GPUs (warn loudly)

  // "CUDA bf16/fp32 on GPU 0 (NVIDIA H200, 140 GiB), communicator NCCL" (bf16 matmuls and attention,
  // fp32 master weights, gradients and statistics) or "CPU fp32, communicator MPI".
  std::string describe() const;
};

// This rank's choice from its own hardware; no device is touched. Throws an Error saying what to
// change when the request cannot be met (cuda without a GPU or in a build without CUDA, nccl on the
// CPU backend).
BackendChoice resolve_backend(const BackendRequest& request, const RankHardware& hardware);

// Collective over world: resolves on every rank, and when any rank cannot meet the request every
// rank throws the same error, naming the first such rank. auto gives every rank the same backend:
// the CPU everywhere when some rank would not run on CUDA. With the CUDA backend it selects the
// rank's GPU and fills in its name and memory.
BackendChoice choose_backend(const BackendRequest& request, Communicator& world, int local_rank,
                             bool caller_runs_on_cuda);

}  // namespace t6
