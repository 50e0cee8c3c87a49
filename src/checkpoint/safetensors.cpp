#include "checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/durable_file.h"
#include "core/error.h"

namespace t6 {

namespace {
// A header larger than this is not a safetensors file (the format's own reader caps it at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t count = 1;
  for (int64_t size : shape) count *= size;
  return count;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  std::ifstream file(path, std::ios::binary);
  T6_CHECK(file, path, ": cannot open file");
  const uint64_t file_size = std::filesystem::file_size(path);
  T6_CHECK(file_size >= 8, path, ": not a safetensors file (", file_size, " bytes, shorter than its header length)");
  unsigned char length_bytes[8];
  file.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
  T6_CHECK(header_bytes <= kMaxHeaderBytes && 8 + header_bytes <= file_size, path, ": bad safetensors header length ",
           header_bytes, " for a file of ", file_size, " bytes (truncated or not a safetensors file)");
  std::string header_text(header_bytes, '\0');
  file.read(header_text.data(), std::streamsize(header_bytes));
  data_start_ = 8 + header_bytes;
  const uint64_t data_bytes = file_size - data_start_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& error) {
    fail(str(path, ": safetensors header is not valid JSON (", error.what(), ")"));
  }
  T6_CHECK(header.is_object(), path, ": safetensors header is not a JSON object");
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      T6_CHECK(value.is_object(), path, ": __metadata__ is not an object");
      for (const auto& [key, text] : value.items()) {
        T6_CHECK(text.is_string(), path, ": metadata '", key, "' is not a string");
        metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    try {
      SafetensorsEntry entry;
      entry.dtype = dtype_from_name(value.at("dtype").get<std::string>());
      entry.shape = value.at("shape").get<std::vector<int64_t>>();
      const auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      T6_CHECK(offsets.size() == 2, "data_offsets must have two entries");
      entry.begin = offsets[0];
      entry.end = offsets[1];
      for (int64_t size : entry.shape) T6_CHECK(size >= 0, "negative dimension");
      T6_CHECK(entry.begin <= entry.end && entry.end <= data_bytes, "data_offsets [", entry.begin, ", ", entry.end,
               ") outside the ", data_bytes, " data bytes (truncated file?)");
      T6_CHECK(entry.end - entry.begin == uint64_t(entry.numel()) * dtype_size(entry.dtype), "data_offsets span ",
               entry.end - entry.begin, " bytes but ", dtype_name(entry.dtype), " ", entry.numel(), " elements need ",
               uint64_t(entry.numel()) * dtype_size(entry.dtype));
      ranges.emplace_back(entry.begin, entry.end);
      entries_[name] = entry;
    } catch (const nlohmann::json::exception& error) {
      fail(str(path, ": tensor '", name, "' has a malformed header entry (", error.what(), ")"));
    } catch (const Error& error) {
      fail(str(path, ": tensor '", name, "': ", error.what()));
    }
  }
  // Like the reference reader: the tensors cover the data section exactly, without overlaps, holes
  // or bytes after the last one.
  std::sort(ranges.begin(), ranges.end());
  uint64_t covered = 0;
  for (const auto& [begin, end] : ranges) {
    T6_CHECK(begin >= covered, path, ": tensors overlap in the data section");
    T6_CHECK(begin == covered, path, ": data bytes [", covered, ", ", begin, ") belong to no tensor");
    covered = end;
  }
  T6_CHECK(covered == data_bytes, path, ": ", data_bytes - covered, " trailing bytes after the last tensor's data (",
           data_bytes, " data bytes, the tensors account for ", covered, ")");
}

const SafetensorsEntry& SafetensorsReader::entry(const std::string& name) const {
  auto found = entries_.find(name);
  T6_CHECK(found != entries_.end(), path_, ": no tensor named '", name, "'");
  return found->second;
}

std::vector<char> SafetensorsReader::read_bytes(const SafetensorsEntry& entry) const {
  std::vector<char> bytes(entry.end - entry.begin);
  std::ifstream file(path_, std::ios::binary);
  file.seekg(std::streamoff(data_start_ + entry.begin));
  file.read(bytes.data(), std::streamsize(bytes.size()));
  T6_CHECK(file || bytes.empty(), path_, ": read failed (file changed or truncated while reading)");
  return bytes;
}

std::vector<float> SafetensorsReader::read_f32(const std::string& name, const std::vector<int64_t>* expected_shape) const {
  const SafetensorsEntry& found = entry(name);
  if (expected_shape) {
    T6_CHECK(found.shape == *expected_shape, path_, ": tensor '", name, "' has shape ", Shape::of(found.shape).to_string(),
             ", expected ", Shape::of(*expected_shape).to_string());
  }
  const std::vector<char> bytes = read_bytes(found);
  std::vector<float> values(found.numel());
  switch (found.dtype) {
    case DType::F32: std::memcpy(values.data(), bytes.data(), bytes.size()); break;
    case DType::F64:
      for (size_t i = 0; i < values.size(); ++i) {
        double value;
        std::memcpy(&value, bytes.data() + 8 * i, 8);
        values[i] = float(value);
      }
      break;
    case DType::BF16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t half;
        std::memcpy(&half, bytes.data() + 2 * i, 2);
        values[i] = bf16_bits_to_float(half);
      }
      break;
    default: fail(str(path_, ": tensor '", name, "' is ", dtype_name(found.dtype), ", expected a float type"));
  }
  return values;
}

std::vector<int32_t> SafetensorsReader::read_i32(const std::string& name) const {
  const SafetensorsEntry& found = entry(name);
  const std::vector<char> bytes = read_bytes(found);
  std::vector<int32_t> values(found.numel());
  if (found.dtype == DType::I32) {
    std::memcpy(values.data(), bytes.data(), bytes.size());
  } else if (found.dtype == DType::I64) {
    for (size_t i = 0; i < values.size(); ++i) {
      int64_t value;
      std::memcpy(&value, bytes.data() + 8 * i, 8);
      T6_CHECK(value >= INT32_MIN && value <= INT32_MAX, path_, ": tensor '", name, "' holds ", value, ", outside int32");
      values[i] = int32_t(value);
    }
  } else {
    fail(str(path_, ": tensor '", name, "' is ", dtype_name(found.dtype), ", expected I32 or I64"));
  }
  return values;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsTensor& tensor : tensors) {
    T6_CHECK(tensor.dtype == DType::F32 || tensor.dtype == DType::BF16, path, ": can only write F32 or BF16 tensors");
    T6_CHECK(!header.contains(tensor.name), path, ": tensor '", tensor.name, "' given twice");
    const uint64_t bytes = uint64_t(Shape::of(tensor.shape).numel()) * dtype_size(tensor.dtype);
    header[tensor.name] = {{"dtype", dtype_name(tensor.dtype)}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // align the data section to 8 bytes

  const std::string temporary = path + ".tmp";
  // A failed write takes its temporary file with it: only a complete file is ever left behind.
  struct RemoveUnlessCommitted {
    const std::string& file;
    bool committed = false;
    ~RemoveUnlessCommitted() {
      std::error_code ignored;
      if (!committed) std::filesystem::remove(file, ignored);
    }
  } cleanup{temporary};
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    T6_CHECK(file, temporary, ": cannot create file");
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; ++i) length_bytes[i] = uint8_t(uint64_t(header_text.size()) >> (8 * i));
    file.write(reinterpret_cast<const char*>(length_bytes), 8);
    file.write(header_text.data(), std::streamsize(header_text.size()));
    std::vector<uint16_t> halves;
    for (const SafetensorsTensor& tensor : tensors) {
      const int64_t count = Shape::of(tensor.shape).numel();
      if (tensor.dtype == DType::F32) {
        file.write(reinterpret_cast<const char*>(tensor.data), std::streamsize(count * 4));
      } else {
        halves.resize(size_t(count));
        for (int64_t i = 0; i < count; ++i) halves[i] = float_to_bf16_bits(tensor.data[i]);
        file.write(reinterpret_cast<const char*>(halves.data()), std::streamsize(count * 2));
      }
    }
    file.flush();
    T6_CHECK(file, temporary, ": write failed (disk full?)");
  }
  commit_file(temporary, path);
  cleanup.committed = true;
}

}  // namespace t6
