#include "parallel/collective_checks.h"

#include <cstdint>

namespace t6 {

namespace {

const char* device_name(Device device) { return device == Device::CPU ? "host" : "device"; }

void check_buffer(const CollectiveBackend& backend, const char* collective, const char* role, const Tensor& buffer) {
  T6_CHECK(!buffer.empty() || buffer.numel() == 0, backend.name, " ", collective, ": the ", role,
           " buffer has no memory");
  T6_CHECK(buffer.device() == backend.device, backend.name, " ", collective, ": the ", role, " buffer is in ",
           device_name(buffer.device()), " memory, but the ", backend.name, " communicator takes ",
           device_name(backend.device), " memory");
}

void check_reduction(const CollectiveBackend& backend, const char* collective, DType dtype, ReduceOp op) {
  const bool floating = dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16;
  T6_CHECK(op != ReduceOp::Avg || floating, backend.name, " ", collective, ": avg needs a floating-point buffer, got ",
           dtype_name(dtype), " (reduce with sum and divide explicitly)");
}

void check_root(const CollectiveBackend& backend, const char* collective, int root, int group_size) {
  T6_CHECK(0 <= root && root < group_size, backend.name, " ", collective, ": root ", root,
           " is not a rank of a group of ", group_size);
}

bool ranges_overlap(const Tensor& a, const Tensor& b) {
  const auto a_begin = reinterpret_cast<uintptr_t>(a.raw());
  const auto b_begin = reinterpret_cast<uintptr_t>(b.raw());
  return a_begin < b_begin + b.bytes() && b_begin < a_begin + a.bytes();
}

void check_chunked(const CollectiveBackend& backend, const char* collective, const Tensor& part, const Tensor& whole,
                   int group_size, int rank, const char* part_role, const char* whole_role) {
  check_buffer(backend, collective, part_role, part);
  check_buffer(backend, collective, whole_role, whole);
  T6_CHECK(part.dtype() == whole.dtype(), backend.name, " ", collective, ": ", part_role, " is ",
           dtype_name(part.dtype()), " but ", whole_role, " is ", dtype_name(whole.dtype()));
  T6_CHECK(whole.numel() == int64_t(group_size) * part.numel(), backend.name, " ", collective, ": ", whole_role,
           " has ", whole.numel(), " elements, expected ", group_size, " ranks x ", part.numel(), " ", part_role,
           " elements = ", int64_t(group_size) * part.numel());
  T6_CHECK(!ranges_overlap(part, whole) || is_chunk_of(part, whole, rank), backend.name, " ", collective, ": ",
           part_role, " overlaps ", whole_role, " but is not its chunk ", rank, " (the only in-place layout)");
}

}  // namespace

bool is_chunk_of(const Tensor& part, const Tensor& whole, int index) {
  return part.dtype() == whole.dtype() && static_cast<const char*>(whole.raw()) + int64_t(index) * part.bytes() ==
                                              static_cast<const char*>(part.raw());
}

void check_all_reduce(const CollectiveBackend& backend, const Tensor& buffer, ReduceOp op) {
  check_buffer(backend, "all_reduce", "in-place", buffer);
  check_reduction(backend, "all_reduce", buffer.dtype(), op);
}

void check_reduce_scatter(const CollectiveBackend& backend, const Tensor& input, const Tensor& output, ReduceOp op,
                          int group_size, int rank) {
  check_chunked(backend, "reduce_scatter", output, input, group_size, rank, "output", "input");
  check_reduction(backend, "reduce_scatter", input.dtype(), op);
}

void check_all_gather(const CollectiveBackend& backend, const Tensor& input, const Tensor& output, int group_size,
                      int rank) {
  check_chunked(backend, "all_gather", input, output, group_size, rank, "input", "output");
}

void check_reduce(const CollectiveBackend& backend, const Tensor& buffer, ReduceOp op, int root, int group_size) {
  check_buffer(backend, "reduce", "in-place", buffer);
  check_reduction(backend, "reduce", buffer.dtype(), op);
  check_root(backend, "reduce", root, group_size);
}

void check_broadcast(const CollectiveBackend& backend, const Tensor& buffer, int root, int group_size) {
  check_buffer(backend, "broadcast", "in-place", buffer);
  check_root(backend, "broadcast", root, group_size);
}

}  // namespace t6
