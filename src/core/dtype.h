// Element types and devices of tensors, with their sizes and names (names as in safetensors).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace t6 {

enum class DType : uint8_t { F32, F64, BF16, I32, I64, U16, U32, U64 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);        // "F32", "BF16", ... (safetensors spelling)
DType dtype_from_name(const std::string& name);  // throws on an unknown name

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::U16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::U32; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::U64; }

}  // namespace t6
