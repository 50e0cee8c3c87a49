#include "parallel/mpi_communicator.h"

#include <climits>
#include <cstring>

#include "parallel/collective_checks.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "parallel/mpi_check.h"

namespace t6 {

namespace {

constexpr CollectiveBackend kMpiBackend{"MPI", Device::CPU};

// MPI counts are int (Open MPI 4 has no large-count collectives).
int mpi_count(const Tensor& buffer, const char* collective) {
  T6_CHECK(buffer.numel() <= INT_MAX, "MPI ", collective, ": ", buffer.numel(),
           " elements exceed MPI's limit of 2^31-1 per call; split the buffer");
  return int(buffer.numel());
}

// Data movement only needs the element width, so BF16 travels as 16-bit integers.
MPI_Datatype mpi_datatype(DType dtype) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::BF16: return MPI_UINT16_T;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U16: return MPI_UINT16_T;
    case DType::U32: return MPI_UINT32_T;
    case DType::U64: return MPI_UINT64_T;
  }
  fail("MPI: unknown dtype");
}

MPI_Datatype mpi_reduction_datatype(DType dtype, const char* collective) {
  T6_CHECK(dtype != DType::BF16, "MPI ", collective,
           ": BF16 buffers cannot be reduced over MPI (the CPU backend reduces in F32; use the NCCL communicator "
           "for BF16)");
  return mpi_datatype(dtype);
}

// Avg is reduced as a sum, then divided here (MPI has no average).
MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Max ? MPI_MAX : MPI_SUM; }

template <class T>
void divide_elements(void* data, int64_t count, int divisor) {
  T* values = static_cast<T*>(data);
  for (int64_t i = 0; i < count; ++i) values[i] /= T(divisor);
}

void finish_average(const Tensor& buffer, ReduceOp op, int group_size) {
  if (op != ReduceOp::Avg) return;
  if (buffer.dtype() == DType::F32) divide_elements<float>(buffer.raw(), buffer.numel(), group_size);
  else divide_elements<double>(buffer.raw(), buffer.numel(), group_size);
}

bool on_device(const Tensor& tensor) { return tensor.device() == Device::CUDA; }

// `like` seen at `at` in host memory.
Tensor host_view(void* at, const Tensor& like) { return Tensor(at, like.shape(), like.dtype(), Device::CPU); }

// The view of `whole_host` where `part` lies inside `whole` (the in-place chunk layouts).
Tensor host_part(const Tensor& whole_host, const Tensor& whole, const Tensor& part) {
  const ptrdiff_t offset = static_cast<const char*>(part.raw()) - static_cast<const char*>(whole.raw());
  return host_view(static_cast<char*>(whole_host.raw()) + offset, part);
}

bool lies_within(const Tensor& part, const Tensor& whole) {
  const char *p = static_cast<const char*>(part.raw()), *w = static_cast<const char*>(whole.raw());
  return part.device() == whole.device() && p >= w && p + part.bytes() <= w + whole.bytes();
}

// Device → staging on the ops' stream, then the one wait: the host may read the staged bytes, and
// every copy back out of staging queued before has finished, so the host may overwrite them too.
void stage_down(const Tensor& host, const Tensor& device) {
  ops::copy(host, device);
  ops::wait_for_ops(Device::CUDA);
}

// Staging → device on the ops' stream, without waiting: the ops after it are ordered after it.
void stage_up(const Tensor& device, const Tensor& host) { ops::copy(device, host); }

}  // namespace

char* MpiCommunicator::staging(size_t bytes) {
  if (staging_.bytes() < bytes) {
    ops::wait_for_ops(Device::CUDA);  // the last collective's copy back may still read the old buffer
    staging_ = PinnedHostBuffer(bytes);
  }
  return static_cast<char*>(staging_.data());
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm), probes_(comm) {
  T6_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  T6_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  T6_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  // Freeing after MPI_Finalize is an error; a communicator outliving MPI just leaks its handle.
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce(Tensor buffer, ReduceOp op) {
  if (on_device(buffer)) {
    const Tensor host = host_view(staging(buffer.bytes()), buffer);
    stage_down(host, buffer);
    all_reduce(host, op);
    stage_up(buffer, host);
    return;
  }
  check_all_reduce(kMpiBackend, buffer, op);
  const MPI_Datatype datatype = mpi_reduction_datatype(buffer.dtype(), "all_reduce");
  MPI_Request request;
  T6_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer.raw(), mpi_count(buffer, "all_reduce"), datatype, mpi_op(op), comm_,
                              &request));
  probes_.wait(request, describe("all_reduce", buffer, reduce_op_name(op)));
  finish_average(buffer, op, size_);
}

void MpiCommunicator::reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
  if (on_device(input) && on_device(output)) {
    // Output inside input (the in-place chunk) stays inside the staged input; else it follows it.
    const bool inside = lies_within(output, input);
    char* host = staging(input.bytes() + (inside ? 0 : output.bytes()));
    const Tensor host_input = host_view(host, input);
    const Tensor host_output = inside ? host_part(host_input, input, output) : host_view(host + input.bytes(), output);
    stage_down(host_input, input);
    reduce_scatter(host_input, host_output, op);
    stage_up(output, host_output);
    return;
  }
  check_reduce_scatter(kMpiBackend, input, output, op, size_, rank_);
  const MPI_Datatype datatype = mpi_reduction_datatype(input.dtype(), "reduce_scatter");
  mpi_count(input, "reduce_scatter");
  const int chunk_count = mpi_count(output, "reduce_scatter");
  const bool in_place = is_chunk_of(output, input, rank_) && output.numel() > 0;
  MPI_Request request;
  // MPI's in-place reduce-scatter reads all of input and leaves the result in chunk 0.
  T6_MPI_CHECK(MPI_Ireduce_scatter_block(in_place ? MPI_IN_PLACE : input.raw(), in_place ? input.raw() : output.raw(),
                                         chunk_count, datatype, mpi_op(op), comm_, &request));
  probes_.wait(request, describe("reduce_scatter", input, reduce_op_name(op)));
  if (in_place) std::memmove(output.raw(), input.raw(), output.bytes());
  finish_average(output, op, size_);
}

void MpiCommunicator::all_gather(const Tensor& input, Tensor output) {
  if (on_device(input) && on_device(output)) {
    const bool inside = lies_within(input, output);
    char* host = staging(output.bytes() + (inside ? 0 : input.bytes()));
    const Tensor host_output = host_view(host, output);
    const Tensor host_input = inside ? host_part(host_output, output, input) : host_view(host + output.bytes(), input);
    stage_down(host_input, input);
    all_gather(host_input, host_output);
    stage_up(output, host_output);
    return;
  }
  check_all_gather(kMpiBackend, input, output, size_, rank_);
  mpi_count(output, "all_gather");
  const int chunk_count = mpi_count(input, "all_gather");
  const MPI_Datatype datatype = mpi_datatype(input.dtype());
  const void* send = is_chunk_of(input, output, rank_) ? MPI_IN_PLACE : input.raw();
  MPI_Request request;
  T6_MPI_CHECK(MPI_Iallgather(send, chunk_count, datatype, output.raw(), chunk_count, datatype, comm_, &request));
  probes_.wait(request, describe("all_gather", output));
}

void MpiCommunicator::reduce(Tensor buffer, ReduceOp op, int root) {
  if (on_device(buffer)) {
    const Tensor host = host_view(staging(buffer.bytes()), buffer);
    stage_down(host, buffer);
    reduce(host, op, root);
    if (rank_ == root) stage_up(buffer, host);  // the others' results are undefined: nothing to copy back
    return;
  }
  check_reduce(kMpiBackend, buffer, op, root, size_);
  const MPI_Datatype datatype = mpi_reduction_datatype(buffer.dtype(), "reduce");
  const bool is_root = rank_ == root;
  MPI_Request request;
  // The root reduces in place; the others only send (their receive buffer is ignored).
  T6_MPI_CHECK(MPI_Ireduce(is_root ? MPI_IN_PLACE : buffer.raw(), is_root ? buffer.raw() : nullptr,
                           mpi_count(buffer, "reduce"), datatype, mpi_op(op), root, comm_, &request));
  probes_.wait(request, describe("reduce", buffer, reduce_op_name(op)));
  if (is_root) finish_average(buffer, op, size_);
}

void MpiCommunicator::broadcast(Tensor buffer, int root) {
  if (on_device(buffer)) {
    const Tensor host = host_view(staging(buffer.bytes()), buffer);
    if (rank_ == root) ops::copy(host, buffer);
    ops::wait_for_ops(Device::CUDA);  // as in stage_down: the root's bytes staged, older copies out done
    broadcast(host, root);
    stage_up(buffer, host);
    return;
  }
  check_broadcast(kMpiBackend, buffer, root, size_);
  MPI_Request request;
  T6_MPI_CHECK(
      MPI_Ibcast(buffer.raw(), mpi_count(buffer, "broadcast"), mpi_datatype(buffer.dtype()), root, comm_, &request));
  probes_.wait(request, describe("broadcast", buffer));
}

void MpiCommunicator::barrier() {
  MPI_Request request;
  T6_MPI_CHECK(MPI_Ibarrier(comm_, &request));
  probes_.wait(request, str("barrier over ", size_, " ranks"));
}

std::string MpiCommunicator::describe(const char* collective, const Tensor& buffer, const char* op) const {
  return str(collective, op ? str(" (", op, ")") : "", " of ", buffer.numel(), " ", dtype_name(buffer.dtype()), " over ",
             size_, " ranks");
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  MPI_Comm group = MPI_COMM_NULL;
  T6_MPI_CHECK(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &group));
  if (group == MPI_COMM_NULL) return nullptr;
  return std::make_unique<MpiCommunicator>(group);
}

std::unique_ptr<MpiCommunicator> make_mpi_world_communicator() {
  int initialized = 0;
  T6_MPI_CHECK(MPI_Initialized(&initialized));
  T6_CHECK(initialized, "the MPI communicator needs MPI to be initialised first (run the tool through run_mpi_tool)");
  MPI_Comm world = MPI_COMM_NULL;
  T6_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &world));
  return std::make_unique<MpiCommunicator>(world);
}

}  // namespace t6
