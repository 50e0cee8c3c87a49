# The emulated GPU's library, and how the CUDA backend's sources are built against it. Included by
# the top-level CMakeLists.txt when T6_CUDA_EMU is ON, after T6_SOURCES is globbed.
find_path(T6_CUDA_INCLUDE_DIR cuda_runtime.h
  HINTS $ENV{CUDA_HOME}/include $ENV{CUDA_PATH}/include /usr/local/cuda/include
  DOC "The CUDA toolkit's headers (the emulation implements the API they declare)")
if(NOT T6_CUDA_INCLUDE_DIR)
  message(FATAL_ERROR "T6_CUDA_EMU needs the CUDA toolkit's headers (cuda_runtime.h, cublasLt.h, nccl.h): "
                      "set CUDA_HOME or T6_CUDA_INCLUDE_DIR")
endif()
find_package(Boost 1.74 REQUIRED COMPONENTS context)

# Race mode: the emulation, the CUDA sources and the kernel tests built with ThreadSanitizer, each
# CUDA thread a TSan context of its own (race_annotations.h). About 100x slower: run it on the op
# tests, with one OpenMP thread (libgomp is not instrumented).
option(T6_CUDA_EMU_RACES "Build the emulated GPU with ThreadSanitizer to find data races in kernels" OFF)
set(T6_CUDA_EMU_SANITIZE "")
if(T6_CUDA_EMU_RACES)
  set(T6_CUDA_EMU_SANITIZE -fsanitize=thread)
endif()

set(T6_CUDA_EMU_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB T6_CUDA_EMU_SOURCES CONFIGURE_DEPENDS ${T6_CUDA_EMU_DIR}/*.cpp)
add_library(t6_cuda_emu STATIC ${T6_CUDA_EMU_SOURCES})
# The emulation's own headers (mma.h, cub/...) come before the toolkit's, which they stand in for.
target_include_directories(t6_cuda_emu PUBLIC ${T6_CUDA_EMU_DIR}/include ${T6_CUDA_INCLUDE_DIR}
                                       PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(t6_cuda_emu PUBLIC T6_CUDA_EMU=1)
target_compile_options(t6_cuda_emu PRIVATE ${T6_WARNINGS})
# The emulation itself is not instrumented: TSan would see its fiber switches as calls that return
# in another context (its shadow stacks overflow) and its bookkeeping as races. It only calls TSan's
# annotation API, which T6_CUDA_EMU_RACES turns on (race_annotations.h).
target_link_options(t6_cuda_emu PUBLIC ${T6_CUDA_EMU_SANITIZE})
if(T6_CUDA_EMU_RACES)
  target_compile_definitions(t6_cuda_emu PRIVATE T6_CUDA_EMU_RACES=1)
endif()
target_link_libraries(t6_cuda_emu PUBLIC Boost::context MPI::MPI_C ${BLAS_LIBRARIES} OpenMP::OpenMP_CXX)
if(T6_OPENBLAS_OPENMP_INCLUDE)
  target_include_directories(t6_cuda_emu PRIVATE ${T6_OPENBLAS_OPENMP_INCLUDE})
endif()

# The .cu files are C++ to the host compiler, with the kernel-side emulation (qualifiers, built-in
# variables, barriers, warp intrinsics) included ahead of everything else: NVIDIA's host_defines.h
# would otherwise define __shared__ as nothing, turning shared arrays into per-thread locals.
# threadIdx and friends are unsigned, as on the GPU, so mixed comparisons that nvcc does not warn
# about in device code would flood the host build: -Wno-sign-compare for these files only.
# Tests with kernels of their own (tests/*.cu) are built the same way (tests/CMakeLists.txt).
function(t6_cuda_emu_kernel_sources)
  set(kernel_sources ${ARGN})
  list(FILTER kernel_sources INCLUDE REGEX "\\.cu$")
  set_source_files_properties(${kernel_sources} PROPERTIES LANGUAGE CXX
    COMPILE_OPTIONS "-include;${T6_CUDA_EMU_DIR}/include/cuda_emu_kernel.h;-Wno-sign-compare;${T6_CUDA_EMU_SANITIZE}")
endfunction()
t6_cuda_emu_kernel_sources(${T6_SOURCES})
