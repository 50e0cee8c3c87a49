// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header (tensor name → dtype, shape, data offsets; optional "__metadata__" of string
// values), then the raw little-endian data. Reading checks the header against the file before any
// data is used; writing goes to a temporary file renamed into place, so a crash never leaves a
// half-written file under the final name.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t6 {

struct SafetensorsEntry {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
  int64_t numel() const;
};

class SafetensorsReader {
 public:
  // Throws naming the file on a bad header, offsets outside the file, overlapping tensors, or a
  // size that does not match dtype × shape.
  explicit SafetensorsReader(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming the missing tensor

  // The tensor's data converted to fp32 (from F32, F64 or BF16), with its shape checked when
  // `expected_shape` is given.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>* expected_shape = nullptr) const;
  std::vector<int32_t> read_i32(const std::string& name) const;  // from I32 or I64

 private:
  std::vector<char> read_bytes(const SafetensorsEntry& entry) const;
  std::string path_;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, SafetensorsEntry> entries_;
};

struct SafetensorsTensor {
  std::string name;
  DType dtype;                 // F32 or BF16 in the file; data is always given as fp32
  std::vector<int64_t> shape;
  const float* data;
};

// Writes `tensors` in the order given, atomically (temporary file, fsync, rename).
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace t6
