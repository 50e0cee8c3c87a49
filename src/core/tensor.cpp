#include "core/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/process_memory.h"

namespace t6 {

Shape::Shape(std::initializer_list<int64_t> sizes) {
  T6_ASSERT(sizes.size() <= size_t(kMaxDims));
  for (int64_t size : sizes) dims[ndim++] = size;
}

Shape Shape::of(const std::vector<int64_t>& sizes) {
  T6_CHECK(sizes.size() <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dimensions, got ", sizes.size());
  Shape shape;
  for (int64_t size : sizes) shape.dims[shape.ndim++] = size;
  return shape;
}

int64_t Shape::numel() const {
  int64_t count = 1;
  for (int axis = 0; axis < ndim; ++axis) count *= dims[axis];
  return count;
}

std::string Shape::to_string() const {
  std::ostringstream out;
  out << '(';
  for (int axis = 0; axis < ndim; ++axis) out << (axis ? ", " : "") << dims[axis];
  out << ')';
  return out.str();
}

bool Shape::operator==(const Shape& other) const {
  if (ndim != other.ndim) return false;
  for (int axis = 0; axis < ndim; ++axis)
    if (dims[axis] != other.dims[axis]) return false;
  return true;
}

Tensor Tensor::view(Shape shape) const {
  T6_ASSERT(shape.numel() == numel());
  return Tensor(data_, shape, dtype_, device_);
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  T6_ASSERT(ndim() >= 1 && 0 <= begin && begin <= end && end <= size(0));
  Shape shape = shape_;
  shape.dims[0] = end - begin;
  const int64_t row_elements = size(0) ? numel() / size(0) : 0;
  return Tensor(static_cast<char*>(data_) + begin * row_elements * int64_t(dtype_size(dtype_)), shape, dtype_, device_);
}

HostBuffer::HostBuffer(size_t bytes, HostPages pages) : bytes_(bytes) {
  // Refused up front: the zero-fill below touches every page, so with overcommit a buffer larger
  // than the machine would not fail here but get the process killed part way through.
  const auto gib = [](double b) { return str(std::fixed, std::setprecision(1), b / double(1ull << 30), " GiB"); };
  const int64_t physical = physical_memory_bytes();
  T6_CHECK(bytes <= size_t(physical), "cannot allocate ", gib(double(bytes)), " of host memory: this machine has ",
           gib(double(physical)));
  const size_t alignment = pages == HostPages::huge ? size_t(2) << 20 : 64;
  const size_t rounded = std::max((bytes + alignment - 1) / alignment * alignment, alignment);
  data_ = std::aligned_alloc(alignment, rounded);
  T6_CHECK(data_, "cannot allocate ", gib(double(bytes)), " of host memory (", gib(double(physical)),
           " on this machine, part of it in use)");
  // Advice only: without transparent huge pages the buffer keeps 4 KiB pages. Given before the
  // zero-fill, which is what faults the pages in.
  if (pages == HostPages::huge) madvise(data_, rounded, MADV_HUGEPAGE);
  std::memset(data_, 0, rounded);
}

HostBuffer::~HostBuffer() { std::free(data_); }

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

Tensor HostBuffer::as(Shape shape, DType dtype) const {
  T6_ASSERT(size_t(shape.numel()) * dtype_size(dtype) <= bytes_);
  return Tensor(data_, shape, dtype);
}

}  // namespace t6
