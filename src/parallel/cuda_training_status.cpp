#include "parallel/cuda_training_status.h"

namespace t6 {

const char* cuda_training_status() {
  return "training runs on the CPU backend (fp32, MPI between ranks) in this version; the CUDA ops exist and are "
         "tested, but the training step does not run on a GPU yet";
}

const char* cuda_training_refusal() {
  return "parallel.backend = \"cuda\": this version of t6 has no CUDA training path (its CUDA ops exist and are "
         "tested, but the training step does not run on them yet), whatever GPUs this machine has; set parallel.backend = "
         "\"cpu\" (or \"auto\") to train on the CPU";
}

const char* cuda_auto_fallback_warning() {
  return "WARNING: this node has GPUs, but this version of t6 has no CUDA training path: every rank trains on the "
         "CPU (fp32), far slower than a GPU would. To train on the CPU on purpose, set parallel.backend = \"cpu\"; "
         "for GPU training, wait for the CUDA training path (README.md, \"GPUs\")";
}

}  // namespace t6
