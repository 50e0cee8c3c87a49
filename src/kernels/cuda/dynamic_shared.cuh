// T6_DYNAMIC_SHARED(name): inside a kernel, `name` is a char pointer to the block's dynamic shared
// memory (128-byte aligned), sized by the launch. Under nvcc it is the usual extern __shared__
// array; in the emulated build (T6_CUDA_EMU) the emulation's poisoned per-block buffer.
#pragma once

#ifdef T6_CUDA_EMU
#define T6_DYNAMIC_SHARED(name) char* const name = ::t6::cuda_emu::builtins().dynamic_shared
#else
#define T6_DYNAMIC_SHARED(name) extern __shared__ __align__(128) char name[]
#endif
