// <mpi.h> without Open MPI's deprecated C++ bindings: t6 links only the C library (MPI::MPI_C), and
// the bindings' inline code would otherwise need libmpi_cxx at link time. Include this, not <mpi.h>.
#pragma once
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
