// Where training runs in this version, said in one place: --help, the README's opening, the
// backend errors and warnings, the start-up table and the plan all take their words from here, so
// that they change together when the training step runs on CUDA (set kTrainingStepRunsOnCuda, reword).
#pragma once

namespace t6 {

// The training step, model and optimizer run on host memory only: the CUDA ops exist and are
// tested against their CPU twins, but the device arenas for weights, gradients, AdamW state and
// activations are not written yet.
constexpr bool kTrainingStepRunsOnCuda = false;

// "training runs on the CPU backend (fp32) only in this version: ..." for --help and the plan.
const char* cuda_training_status();

// Why parallel.backend = "cuda" cannot train in this version (first of the reasons it gives).
const char* cuda_training_refusal();

// The warning rank 0 prints when auto sees GPUs and trains on the CPU anyway: what to do.
const char* cuda_auto_fallback_warning();

}  // namespace t6
