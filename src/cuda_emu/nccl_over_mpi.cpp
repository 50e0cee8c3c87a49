// The NCCL subset t6 uses (all-reduce, reduce-scatter, reduce, all-gather, broadcast), over Open
// MPI, so that multi-rank tests of device code run under `mpirun -np 2..4` on one machine. A
// communicator is an MPI communicator: ncclCommInitRank splits MPI_COMM_WORLD with the unique id as
// colour (so every world rank must take part, as they do in t6), ncclCommSplit is MPI_Comm_split. A
// communicator of one rank needs no MPI at all, which lets a single process without mpirun use NCCL
// as on one GPU. Each collective flushes its stream and then runs as device work at once (device
// memory readable), because lazy execution could deadlock against host-side MPI. Sums, products,
// maxima and minima in every integer and float type plus bf16 (custom MPI ops that round each step
// to bf16, as NCCL does); averages are sums divided by the rank count. A collective runs on host
// copies of its buffers and waits for its MPI request by polling, so that ncclCommAbort, called
// from another host thread (a watchdog) while a peer never joins, ends it: the collective fails as
// device work (the device's sticky error, as an aborted NCCL kernel leaves it) and
// ncclCommGetAsyncError reports ncclRemoteError from then on.
#include <nccl.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/bf16.h"
#include "core/mpi_c.h"
#include "cuda_emu/runtime_state.h"

struct ncclComm {
  MPI_Comm mpi = MPI_COMM_NULL;  // MPI_COMM_NULL: a communicator of one rank, without MPI
  int rank = 0;
  int size = 1;
  int device = 0;
  // Set by ncclCommAbort and read by a collective polling its request, on other threads.
  std::atomic<bool> aborted{false};
  std::atomic<ncclResult_t> async_error{ncclSuccess};
};

using namespace t6::cuda_emu;

namespace {

constexpr char kIdTag[] = "t6-emulated-nccl";

// The last failure on this thread, with a description naming the call (for ncclGetErrorString and
// ncclGetLastError).
thread_local ncclResult_t described_result = ncclSuccess;
thread_local std::string result_description;

ncclResult_t failure(ncclResult_t result, std::string message) {
  described_result = result;
  result_description = std::move(message);
  return result;
}

size_t type_bytes(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

template <class Combine>
void combine_bf16(void* in, void* inout, int* count, Combine combine) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *count; ++i)
    b[i] = t6::float_to_bf16_bits(combine(t6::bf16_bits_to_float(a[i]), t6::bf16_bits_to_float(b[i])));
}

void bf16_sum(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_bf16(in, inout, count, [](float x, float y) { return x + y; });
}
void bf16_prod(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_bf16(in, inout, count, [](float x, float y) { return x * y; });
}
void bf16_max(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_bf16(in, inout, count, [](float x, float y) { return x > y ? x : y; });
}
void bf16_min(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_bf16(in, inout, count, [](float x, float y) { return x < y ? x : y; });
}

// The MPI type and operation of a reduction; false if the type cannot be reduced here.
bool mpi_reduction(ncclDataType_t type, ncclRedOp_t op, MPI_Datatype* mpi_type, MPI_Op* mpi_op) {
  if (type == ncclBfloat16) {
    static MPI_Op sum = MPI_OP_NULL, prod = MPI_OP_NULL, max = MPI_OP_NULL, min = MPI_OP_NULL;
    if (sum == MPI_OP_NULL) {
      MPI_Op_create(bf16_sum, /*commute=*/1, &sum);
      MPI_Op_create(bf16_prod, 1, &prod);
      MPI_Op_create(bf16_max, 1, &max);
      MPI_Op_create(bf16_min, 1, &min);
    }
    *mpi_type = MPI_UINT16_T;
    *mpi_op = op == ncclProd ? prod : op == ncclMax ? max : op == ncclMin ? min : sum;
    return true;
  }
  switch (type) {
    case ncclInt8: *mpi_type = MPI_INT8_T; break;
    case ncclUint8: *mpi_type = MPI_UINT8_T; break;
    case ncclInt32: *mpi_type = MPI_INT32_T; break;
    case ncclUint32: *mpi_type = MPI_UINT32_T; break;
    case ncclInt64: *mpi_type = MPI_INT64_T; break;
    case ncclUint64: *mpi_type = MPI_UINT64_T; break;
    case ncclFloat32: *mpi_type = MPI_FLOAT; break;
    case ncclFloat64: *mpi_type = MPI_DOUBLE; break;
    default: return false;
  }
  *mpi_op = op == ncclProd ? MPI_PROD : op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : MPI_SUM;
  return true;
}

// The MPI type and operation of a reducing collective, or ncclInvalidArgument naming `call` for a type
// the emulation does not reduce (a communicator of one rank without MPI only copies: any sized type).
ncclResult_t reduction_for(const char* call, ncclComm_t comm, ncclDataType_t type, ncclRedOp_t op,
                           MPI_Datatype* mpi_type, MPI_Op* mpi_op) {
  if (comm && comm->mpi != MPI_COMM_NULL ? mpi_reduction(type, op, mpi_type, mpi_op) : type_bytes(type) != 0)
    return ncclSuccess;
  return failure(ncclInvalidArgument, std::string(call) + ": data type " + std::to_string(int(type)) + " is not emulated");
}

template <class T>
void divide_each(void* data, size_t count, int size) {
  auto* values = static_cast<T*>(data);
  for (size_t i = 0; i < count; ++i) values[i] = T(values[i] / T(size));
}

// ncclAvg: the sum divided by the rank count, in the buffer's type.
void finish_average(void* data, size_t count, ncclDataType_t type, int size) {
  switch (type) {
    case ncclInt8: divide_each<int8_t>(data, count, size); break;
    case ncclUint8: divide_each<uint8_t>(data, count, size); break;
    case ncclInt32: divide_each<int32_t>(data, count, size); break;
    case ncclUint32: divide_each<uint32_t>(data, count, size); break;
    case ncclInt64: divide_each<int64_t>(data, count, size); break;
    case ncclUint64: divide_each<uint64_t>(data, count, size); break;
    case ncclFloat32: divide_each<float>(data, count, size); break;
    case ncclFloat64: divide_each<double>(data, count, size); break;
    case ncclBfloat16: {
      auto* values = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < count; ++i)
        values[i] = t6::float_to_bf16_bits(t6::bf16_bits_to_float(values[i]) / float(size));
      break;
    }
    default: break;
  }
}

// The checks every collective shares: a live communicator not aborted, device buffers that hold the counts,
// counts MPI can express, and a reducible type where one is needed.
ncclResult_t check_collective(const char* call, ncclComm_t comm, const void* send, size_t send_bytes, const void* recv,
                              size_t recv_bytes, size_t mpi_count) {
  if (!comm) return failure(ncclInvalidArgument, std::string(call) + ": the communicator is null");
  // An aborted communicator's handle is no longer valid, as with NCCL.
  if (comm->aborted.load())
    return failure(ncclInvalidUsage, std::string(call) + ": the communicator was aborted (ncclCommAbort)");
  if (mpi_count > size_t(INT32_MAX))
    return failure(ncclInvalidArgument, std::string(call) + ": " + std::to_string(mpi_count) +
                                            " elements are more than the emulation's MPI calls take (2^31 - 1)");
  if (send_bytes > 0 && check_device_span(call, "sendbuff", send, send_bytes) != cudaSuccess)
    return failure(ncclInvalidArgument, cudaGetErrorString(cudaErrorInvalidValue));
  if (recv_bytes > 0 && check_device_span(call, "recvbuff", recv, recv_bytes) != cudaSuccess)
    return failure(ncclInvalidArgument, cudaGetErrorString(cudaErrorInvalidValue));
  return ncclSuccess;
}

// Flushes the stream, then runs the collective as device work now.
ncclResult_t run_on_stream(const char* call, cudaStream_t stream, std::function<void()> work) {
  if (!resolve_stream(stream)) return failure(ncclInvalidArgument, std::string(call) + ": the stream is not a live stream");
  enqueue(stream, call, std::move(work));
  if (flush(stream) != cudaSuccess)
    return failure(ncclUnhandledCudaError, std::string(call) + ": " + cudaGetErrorString(cudaErrorLaunchFailure));
  return ncclSuccess;
}

// One collective's MPI buffers: host copies of its own, so that a collective abandoned by
// ncclCommAbort (MPI cannot cancel one) writes, when the late peer joins after all, into memory that
// stays valid instead of a device buffer freed meanwhile.
struct CollectiveBuffers {
  std::vector<char> send, recv;
  MPI_Request request = MPI_REQUEST_NULL;
};

// Runs a collective: `start` begins it on `buffers` (send holds send_bytes from send, recv has
// recv_bytes), and the host polls the request unless the communicator is aborted meanwhile; then the
// buffers are kept for good and the device work fails. Else recv_bytes are copied out to recv.
template <class Start>
void run_collective(ncclComm_t comm, const char* call, const void* send, size_t send_bytes, void* recv,
                    size_t recv_bytes, Start start) {
  auto buffers = std::make_unique<CollectiveBuffers>();
  buffers->send.assign(static_cast<const char*>(send), static_cast<const char*>(send) + send_bytes);
  buffers->recv.resize(recv_bytes);
  start(*buffers);
  for (;;) {
    int done = 0;
    MPI_Test(&buffers->request, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (comm->aborted.load()) {
      static auto* abandoned = new std::vector<std::unique_ptr<CollectiveBuffers>>();  // never freed
      abandoned->push_back(std::move(buffers));
      comm->async_error = ncclRemoteError;
      throw DeviceFault(std::string(call) + ": the communicator was aborted (ncclCommAbort) before every rank joined");
    }
    std::this_thread::yield();
  }
  std::memcpy(recv, buffers->recv.data(), recv_bytes);
}

bool mpi_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return failure(ncclInvalidArgument, "ncclGetVersion: version is null");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  if (result != ncclSuccess && result == described_result) return result_description.c_str();
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) { return result_description.c_str(); }

// The id carries a random MPI colour; rank 0 makes it and the caller broadcasts it.
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return failure(ncclInvalidArgument, "ncclGetUniqueId: id is null");
  std::memset(id, 0, sizeof *id);
  std::memcpy(id->internal, kIdTag, sizeof kIdTag);
  const int32_t colour = int32_t(std::random_device()() & 0x7fffffffu);
  std::memcpy(id->internal + sizeof kIdTag, &colour, sizeof colour);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm) return failure(ncclInvalidArgument, "ncclCommInitRank: comm is null");
  *comm = nullptr;
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return failure(ncclInvalidArgument, "ncclCommInitRank: rank " + std::to_string(rank) + " of " + std::to_string(nranks));
  if (std::memcmp(id.internal, kIdTag, sizeof kIdTag) != 0)
    return failure(ncclInvalidArgument, "ncclCommInitRank: the unique id does not come from ncclGetUniqueId");
  auto created = new ncclComm{MPI_COMM_NULL, rank, nranks, current_device()};
  if (nranks > 1) {
    if (!mpi_running()) {
      delete created;
      return failure(ncclInvalidUsage, "ncclCommInitRank: " + std::to_string(nranks) +
                                           " ranks need MPI (the emulated NCCL runs over it): run under mpirun "
                                           "after MPI_Init");
    }
    int32_t colour = 0;
    std::memcpy(&colour, id.internal + sizeof kIdTag, sizeof colour);
    MPI_Comm_split(MPI_COMM_WORLD, colour, rank, &created->mpi);
    int mpi_size = 0, mpi_rank = 0;
    MPI_Comm_size(created->mpi, &mpi_size);
    MPI_Comm_rank(created->mpi, &mpi_rank);
    if (mpi_size != nranks || mpi_rank != rank) {
      MPI_Comm_free(&created->mpi);
      delete created;
      return failure(ncclInvalidUsage, "ncclCommInitRank: " + std::to_string(mpi_size) + " MPI ranks joined with this id as rank " +
                                           std::to_string(mpi_rank) + ", but the caller says rank " +
                                           std::to_string(rank) + " of " + std::to_string(nranks));
    }
  }
  *comm = created;
  return ncclSuccess;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t*) {
  if (!comm || !newcomm) return failure(ncclInvalidArgument, "ncclCommSplit: comm or newcomm is null");
  *newcomm = nullptr;
  if (comm->mpi == MPI_COMM_NULL) {
    if (color != NCCL_SPLIT_NOCOLOR) *newcomm = new ncclComm{MPI_COMM_NULL, 0, 1, comm->device};
    return ncclSuccess;
  }
  MPI_Comm split = MPI_COMM_NULL;
  MPI_Comm_split(comm->mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key, &split);
  if (split == MPI_COMM_NULL) return ncclSuccess;
  auto created = new ncclComm{split, 0, 1, comm->device};
  MPI_Comm_rank(split, &created->rank);
  MPI_Comm_size(split, &created->size);
  *newcomm = created;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  return comm ? ncclSuccess : failure(ncclInvalidArgument, "ncclCommFinalize: comm is null");
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  if (comm->mpi != MPI_COMM_NULL && mpi_running()) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

// May be called from any thread, also while another is inside a collective on comm: it only marks
// the communicator, whose collective then fails. The handle is not freed (that thread may still be
// reading it); an aborted communicator must not be destroyed or used again, as with NCCL.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm) comm->aborted = true;
  return ncclSuccess;
}

// ncclRemoteError once a collective was ended by ncclCommAbort; other errors are returned by the
// calls themselves, which run synchronously here. Safe from any thread.
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm || !async_error) return failure(ncclInvalidArgument, "ncclCommGetAsyncError: a null argument");
  *async_error = comm->async_error.load();
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (!comm || !count) return failure(ncclInvalidArgument, "ncclCommCount: a null argument");
  *count = comm->size;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (!comm || !rank) return failure(ncclInvalidArgument, "ncclCommUserRank: a null argument");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (!comm || !device) return failure(ncclInvalidArgument, "ncclCommCuDevice: a null argument");
  *device = comm->device;
  return ncclSuccess;
}

// Every collective runs when called, in call order on each rank, so a group needs nothing more.
ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  const char* call = "ncclAllReduce";
  const size_t bytes = count * type_bytes(type);
  MPI_Datatype mpi_type = MPI_DATATYPE_NULL;
  MPI_Op mpi_op = MPI_OP_NULL;
  if (const ncclResult_t result = reduction_for(call, comm, type, op, &mpi_type, &mpi_op)) return result;
  if (const ncclResult_t result = check_collective(call, comm, send, bytes, recv, bytes, count)) return result;
  return run_on_stream(call, stream, [=] {
    if (comm->mpi == MPI_COMM_NULL) {
      if (send != recv) std::memmove(recv, send, bytes);
      return;
    }
    run_collective(comm, call, send, bytes, recv, bytes, [&](CollectiveBuffers& b) {
      MPI_Iallreduce(b.send.data(), b.recv.data(), int(count), mpi_type, mpi_op, comm->mpi, &b.request);
    });
    if (op == ncclAvg) finish_average(recv, count, type, comm->size);
  });
}

ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t recv_count, ncclDataType_t type, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
  const char* call = "ncclReduceScatter";
  const size_t recv_bytes = recv_count * type_bytes(type);
  MPI_Datatype mpi_type = MPI_DATATYPE_NULL;
  MPI_Op mpi_op = MPI_OP_NULL;
  if (const ncclResult_t result = reduction_for(call, comm, type, op, &mpi_type, &mpi_op)) return result;
  if (const ncclResult_t result =
          check_collective(call, comm, send, recv_bytes * size_t(comm ? comm->size : 1), recv, recv_bytes, recv_count))
    return result;
  return run_on_stream(call, stream, [=] {
    const size_t send_bytes = recv_bytes * size_t(comm->size);
    if (comm->mpi == MPI_COMM_NULL) {
      if (send != recv) std::memmove(recv, send, recv_bytes);
      return;
    }
    // In place, NCCL's recvbuff is this rank's slice of sendbuff; the copies make that safe.
    run_collective(comm, call, send, send_bytes, recv, recv_bytes, [&](CollectiveBuffers& b) {
      MPI_Ireduce_scatter_block(b.send.data(), b.recv.data(), int(recv_count), mpi_type, mpi_op, comm->mpi, &b.request);
    });
    if (op == ncclAvg) finish_average(recv, recv_count, type, comm->size);
  });
}

// The root's recvbuff gets the reduction; the others' recvbuff is not touched, as with NCCL.
ncclResult_t ncclReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
  const char* call = "ncclReduce";
  const size_t bytes = count * type_bytes(type);
  MPI_Datatype mpi_type = MPI_DATATYPE_NULL;
  MPI_Op mpi_op = MPI_OP_NULL;
  if (const ncclResult_t result = reduction_for(call, comm, type, op, &mpi_type, &mpi_op)) return result;
  if (comm && (root < 0 || root >= comm->size))
    return failure(ncclInvalidArgument, std::string(call) + ": root " + std::to_string(root) + " of " +
                                            std::to_string(comm->size) + " ranks");
  const bool is_root = comm && comm->rank == root;
  if (const ncclResult_t result = check_collective(call, comm, send, bytes, recv, is_root ? bytes : 0, count))
    return result;
  return run_on_stream(call, stream, [=] {
    if (comm->mpi == MPI_COMM_NULL) {
      if (send != recv) std::memmove(recv, send, bytes);
      return;
    }
    // A rank that is not the root receives nothing: its copy out is of no bytes.
    run_collective(comm, call, send, bytes, recv, is_root ? bytes : 0, [&](CollectiveBuffers& b) {
      MPI_Ireduce(b.send.data(), is_root ? b.recv.data() : nullptr, int(count), mpi_type, mpi_op, root, comm->mpi,
                  &b.request);
    });
    if (is_root && op == ncclAvg) finish_average(recv, count, type, comm->size);
  });
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t send_count, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
  const char* call = "ncclAllGather";
  const size_t send_bytes = send_count * type_bytes(type);
  if (type_bytes(type) == 0)
    return failure(ncclInvalidArgument, std::string(call) + ": data type " + std::to_string(int(type)) + " is not emulated");
  if (const ncclResult_t result =
          check_collective(call, comm, send, send_bytes, recv, send_bytes * size_t(comm ? comm->size : 1), send_bytes))
    return result;
  return run_on_stream(call, stream, [=] {
    if (comm->mpi == MPI_COMM_NULL) {
      if (send != recv) std::memmove(recv, send, send_bytes);
      return;
    }
    run_collective(comm, call, send, send_bytes, recv, send_bytes * size_t(comm->size), [&](CollectiveBuffers& b) {
      MPI_Iallgather(b.send.data(), int(send_bytes), MPI_BYTE, b.recv.data(), int(send_bytes), MPI_BYTE, comm->mpi,
                     &b.request);
    });
  });
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  const char* call = "ncclBroadcast";
  const size_t bytes = count * type_bytes(type);
  if (type_bytes(type) == 0)
    return failure(ncclInvalidArgument, std::string(call) + ": data type " + std::to_string(int(type)) + " is not emulated");
  if (comm && (root < 0 || root >= comm->size))
    return failure(ncclInvalidArgument, std::string(call) + ": root " + std::to_string(root) + " of " +
                                            std::to_string(comm->size) + " ranks");
  const bool is_root = comm && comm->rank == root;
  if (const ncclResult_t result = check_collective(call, comm, send, is_root ? bytes : 0, recv, bytes, bytes)) return result;
  return run_on_stream(call, stream, [=] {
    if (is_root && send != recv) std::memmove(recv, send, bytes);
    if (comm->mpi == MPI_COMM_NULL) return;
    run_collective(comm, call, recv, bytes, recv, bytes, [&](CollectiveBuffers& b) {
      b.recv = b.send;  // MPI broadcasts in place: the root's bytes, the others' to be overwritten
      MPI_Ibcast(b.recv.data(), int(bytes), MPI_BYTE, root, comm->mpi, &b.request);
    });
  });
}

ncclResult_t ncclBcast(void* buffer, size_t count, ncclDataType_t type, int root, ncclComm_t comm, cudaStream_t stream) {
  return ncclBroadcast(buffer, buffer, count, type, root, comm, stream);
}

}  // extern "C"
