#include "parallel/cuda_training_status.h"

namespace t6 {

const char* cuda_training_status() {
  return "training runs on the CPU backend (fp32) and on the CUDA backend (bf16 matmuls and attention over fp32 master "
         "weights, one rank, or several reducing over MPI; every model kind), tested on the emulated GPU; no real GPU "
         "has run it yet";
}

const char* cuda_training_refusal() {
  return "parallel.backend = \"cuda\": this run has no CUDA training path in this version: the CUDA backend trains "
         "one rank, or several with parallel.communicator = \"mpi\" (the trainer does not reduce over NCCL yet); "
         "change that, or set parallel.backend = \"cpu\"";
}

const char* cuda_auto_fallback_warning() {
  return "WARNING: this node has GPUs, but this run has no CUDA training path in this version (several ranks need "
         "parallel.communicator = \"mpi\"): every rank trains on the CPU (fp32), "
         "far slower than a GPU would. Set parallel.communicator = \"mpi\" to train on the GPUs, or "
         "parallel.backend = \"cpu\" to train on the CPU on purpose";
}

}  // namespace t6
