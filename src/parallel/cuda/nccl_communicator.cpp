#include "parallel/cuda/nccl_communicator.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "parallel/collective_checks.h"
#include "parallel/cuda/nccl_check.h"

namespace t6 {

namespace {

constexpr CollectiveBackend kNcclBackend{"NCCL", Device::CUDA};
constexpr int kFirstVersionWithSplit = 21800;  // ncclCommSplit arrived in NCCL 2.18

ncclDataType_t nccl_reduction_datatype(DType dtype, const char* collective) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U32: return ncclUint32;
    case DType::U64: return ncclUint64;
    case DType::U16: break;
  }
  fail(str("NCCL ", collective, ": NCCL cannot reduce ", dtype_name(dtype), " buffers"));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
  }
  fail("NCCL: unknown reduce op");
}

// The unique id is 128 opaque bytes; it travels as aligned I64 words over the host communicator.
ncclUniqueId broadcast_unique_id(Communicator& bootstrap) {
  static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0);
  ncclUniqueId id{};
  if (bootstrap.rank() == 0) T6_NCCL_CHECK(ncclGetUniqueId(&id));
  std::array<int64_t, sizeof(ncclUniqueId) / sizeof(int64_t)> words{};
  std::memcpy(words.data(), &id, sizeof(id));
  bootstrap.broadcast(Tensor(words.data(), {int64_t(words.size())}, DType::I64), 0);
  std::memcpy(&id, words.data(), sizeof(id));
  return id;
}

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, int cuda_device, cudaStream_t compute_stream)
    : cuda_device_(cuda_device), compute_stream_(compute_stream) {
  T6_CUDA_CHECK(cudaSetDevice(cuda_device));
  const ncclUniqueId id = broadcast_unique_id(bootstrap);
  T6_NCCL_CHECK(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()));
  create_stream_and_events();
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int cuda_device, cudaStream_t compute_stream)
    : comm_(comm), cuda_device_(cuda_device), compute_stream_(compute_stream) {
  create_stream_and_events();
}

void NcclCommunicator::create_stream_and_events() {
  T6_NCCL_CHECK(ncclCommUserRank(comm_, &rank_));
  T6_NCCL_CHECK(ncclCommCount(comm_, &size_));
  T6_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  T6_CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
  T6_CUDA_CHECK(cudaEventCreateWithFlags(&collectives_done_, cudaEventDisableTiming));
  T6_CUDA_CHECK(cudaMalloc(&barrier_word_, sizeof(int)));
}

NcclCommunicator::~NcclCommunicator() {
  // Local teardown only: a collective ncclCommFinalize here could hang a rank unwinding from an
  // error. An aborted communicator's handle is gone, and its stream may never drain.
  if (!aborted_) cudaStreamSynchronize(stream_);
  cudaFree(barrier_word_);
  cudaEventDestroy(collectives_done_);
  cudaEventDestroy(compute_ready_);
  cudaStreamDestroy(stream_);
  if (comm_ && !aborted_) ncclCommDestroy(comm_);
}

std::string NcclCommunicator::asynchronous_error() {
  ncclResult_t state = ncclSuccess;
  if (aborted_ || ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return {};
  return state == ncclSuccess || state == ncclInProgress ? std::string() : ncclGetErrorString(state);
}

void NcclCommunicator::abort() {
  if (!aborted_.exchange(true)) ncclCommAbort(comm_);
}

void NcclCommunicator::synchronize() { T6_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void NcclCommunicator::follow_compute() {
  T6_CUDA_CHECK(cudaEventRecord(compute_ready_, compute_stream_));
  T6_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_ready_, 0));
}

void NcclCommunicator::join_compute() {
  T6_CUDA_CHECK(cudaEventRecord(collectives_done_, stream_));
  T6_CUDA_CHECK(cudaStreamWaitEvent(compute_stream_, collectives_done_, 0));
}

void NcclCommunicator::start_all_reduce(Tensor buffer, ReduceOp op) {
  check_all_reduce(kNcclBackend, buffer, op);
  follow_compute();
  T6_NCCL_CHECK(ncclAllReduce(buffer.raw(), buffer.raw(), size_t(buffer.numel()),
                              nccl_reduction_datatype(buffer.dtype(), "all_reduce"), nccl_op(op), comm_, stream_));
}

void NcclCommunicator::start_reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
  check_reduce_scatter(kNcclBackend, input, output, op, size_, rank_);
  follow_compute();
  T6_NCCL_CHECK(ncclReduceScatter(input.raw(), output.raw(), size_t(output.numel()),
                                  nccl_reduction_datatype(input.dtype(), "reduce_scatter"), nccl_op(op), comm_,
                                  stream_));
}

void NcclCommunicator::start_reduce(Tensor buffer, ReduceOp op, int root) {
  check_reduce(kNcclBackend, buffer, op, root, size_);
  follow_compute();
  T6_NCCL_CHECK(ncclReduce(buffer.raw(), buffer.raw(), size_t(buffer.numel()),
                           nccl_reduction_datatype(buffer.dtype(), "reduce"), nccl_op(op), root, comm_, stream_));
}

void NcclCommunicator::finish_started() { join_compute(); }

void NcclCommunicator::all_reduce(Tensor buffer, ReduceOp op) {
  start_all_reduce(buffer, op);
  join_compute();
}

void NcclCommunicator::reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
  start_reduce_scatter(input, output, op);
  join_compute();
}

void NcclCommunicator::reduce(Tensor buffer, ReduceOp op, int root) {
  start_reduce(buffer, op, root);
  join_compute();
}

// Data movement is dtype-blind, so all_gather and broadcast move bytes and accept every dtype.
void NcclCommunicator::all_gather(const Tensor& input, Tensor output) {
  check_all_gather(kNcclBackend, input, output, size_, rank_);
  follow_compute();
  T6_NCCL_CHECK(ncclAllGather(input.raw(), output.raw(), input.bytes(), ncclUint8, comm_, stream_));
  join_compute();
}

void NcclCommunicator::broadcast(Tensor buffer, int root) {
  check_broadcast(kNcclBackend, buffer, root, size_);
  follow_compute();
  T6_NCCL_CHECK(ncclBroadcast(buffer.raw(), buffer.raw(), buffer.bytes(), ncclUint8, root, comm_, stream_));
  join_compute();
}

void NcclCommunicator::barrier() {
  T6_NCCL_CHECK(ncclAllReduce(barrier_word_, barrier_word_, 1, ncclInt32, ncclSum, comm_, stream_));
  synchronize();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  int version = 0;
  T6_NCCL_CHECK(ncclGetVersion(&version));
  T6_CHECK(version >= kFirstVersionWithSplit, "NCCL communicator split needs NCCL 2.18 or later; this NCCL is ",
           version);
  ncclComm_t group = nullptr;
  T6_NCCL_CHECK(ncclCommSplit(comm_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &group, nullptr));
  if (!group) return nullptr;
  return std::unique_ptr<Communicator>(new NcclCommunicator(group, cuda_device_, compute_stream_));
}

}  // namespace t6
