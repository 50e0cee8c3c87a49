// Tensor: a non-owning view of contiguous, row-major memory with a shape (up to 4 dims), an element
// type and a device. Buffers own memory; arenas hand out views into one buffer (see arena.h).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace t6 {

struct Shape {
  static constexpr int kMaxDims = 4;
  int ndim = 0;
  std::array<int64_t, kMaxDims> dims{};

  Shape() = default;
  Shape(std::initializer_list<int64_t> sizes);
  static Shape of(const std::vector<int64_t>& sizes);

  int64_t operator[](int axis) const { return dims[axis]; }
  int64_t numel() const;
  std::vector<int64_t> to_vector() const { return {dims.begin(), dims.begin() + ndim}; }
  std::string to_string() const;  // "(2, 24, 64)"
  bool operator==(const Shape& other) const;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, Shape shape, DType dtype, Device device = Device::CPU)
      : data_(data), shape_(shape), dtype_(dtype), device_(device) {}

  template <class T>
  T* data() const {
    T6_ASSERT(dtype_of<T>() == dtype_ || (sizeof(T) == 2 && dtype_ == DType::BF16));
    return static_cast<T*>(data_);
  }
  void* raw() const { return data_; }
  const Shape& shape() const { return shape_; }
  int64_t size(int axis) const { return shape_[axis]; }
  int ndim() const { return shape_.ndim; }
  int64_t numel() const { return shape_.numel(); }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool empty() const { return data_ == nullptr; }

  // The same memory seen with another shape of equal element count.
  Tensor view(Shape shape) const;
  // Rows [begin, end) of the first dimension.
  Tensor rows(int64_t begin, int64_t end) const;

 private:
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

// Owning, 64-byte aligned host memory (zero-initialised). HostPages::huge asks the kernel for 2 MiB
// pages (transparent huge pages, where enabled): for a large buffer streamed end to end, such as the
// decoder's KV cache, whose reads otherwise miss the TLB every 4 KiB.
enum class HostPages { standard, huge };
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(size_t bytes, HostPages pages = HostPages::standard);
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Tensor as(Shape shape, DType dtype) const;

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// A host tensor that owns its memory: for tests, tools and small tables.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(Shape shape, DType dtype) : buffer_(size_t(shape.numel()) * dtype_size(dtype)), view_(buffer_.data(), shape, dtype) {}
  const Tensor& view() const { return view_; }
  operator const Tensor&() const { return view_; }
  template <class T> T* data() const { return view_.data<T>(); }
  const Shape& shape() const { return view_.shape(); }
  int64_t numel() const { return view_.numel(); }

 private:
  HostBuffer buffer_;
  Tensor view_;
};

}  // namespace t6
