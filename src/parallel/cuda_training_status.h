// Where training runs in this version, said in one place: --help, the README's opening, the
// backend errors and warnings, the start-up table and the plan all take their words from here, so
// that they change together as the CUDA training path grows.
#pragma once

namespace t6 {

// The training step runs on the CUDA backend for every model kind (device arenas, bf16 matmuls over
// fp32 master weights; one rank, or several reducing over NCCL or MPI).
constexpr bool kTrainingStepRunsOnCuda = true;

// Which backends train in this version, for --help, the plan and the README's opening.
const char* cuda_training_status();

// Why parallel.backend = "cuda" cannot train this run in this version (first of the reasons it gives).
const char* cuda_training_refusal();

// The warning rank 0 prints when auto sees GPUs and trains on the CPU anyway: what to do.
const char* cuda_auto_fallback_warning();

}  // namespace t6
