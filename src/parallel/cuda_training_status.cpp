#include "parallel/cuda_training_status.h"

namespace t6 {

const char* cuda_training_status() {
  return "training runs on the CPU backend (fp32) and on the CUDA backend (bf16 matmuls and attention over fp32 master "
         "weights, one rank or several reducing over NCCL or MPI; every model kind), tested on the emulated GPU; no "
         "real GPU has run it yet";
}

const char* cuda_training_refusal() {
  return "parallel.backend = \"cuda\": this run has no CUDA training path in this version; set parallel.backend = "
         "\"cpu\"";
}

const char* cuda_auto_fallback_warning() {
  return "WARNING: this node has GPUs, but every rank trains on the CPU (fp32), far slower than a GPU would: a rank "
         "of this run has no GPU of its own (more ranks on a node than GPUs). Start at most one rank per GPU, or set "
         "parallel.backend = \"cpu\" to train on the CPU on purpose";
}

}  // namespace t6
