// T6_MPI_CHECK(MPI_Foo(...)): turns a failed MPI call into a t6::Error naming the call, the file and
// line, and MPI's own description. Works only on communicators whose error handler is
// MPI_ERRORS_RETURN (ours are); under the default handler MPI aborts before returning.
#pragma once
#include "core/mpi_c.h"

namespace t6 {

[[noreturn]] void fail_mpi_call(int error_code, const char* call, const char* file, int line);

}  // namespace t6

#define T6_MPI_CHECK(call)                                                           \
  do {                                                                               \
    const int t6_mpi_error_code = (call);                                            \
    if (t6_mpi_error_code != MPI_SUCCESS) ::t6::fail_mpi_call(t6_mpi_error_code, #call, __FILE__, __LINE__); \
  } while (0)
