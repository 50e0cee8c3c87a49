// manifest.json: the one file that makes a checkpoint directory a checkpoint. Rank 0 writes it last;
// it records the save's id, the run (step, tokens seen, config, layout, caller state such as RNG and data loader
// positions), the tensor table, and every shard file with its size, checksum and the slices it holds,
// so a reader knows which file holds which part of which tensor without opening any of them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/tensor_region.h"
#include "core/dtype.h"

namespace t6::checkpoint {

struct TensorInfo {
  std::string name;  // caller's logical name, e.g. "adam_m/transformer.h.0.mlp.c_fc1.weight"
  Extents shape;     // global shape
  DType dtype = DType::F32;
  bool operator==(const TensorInfo& other) const = default;
};

// One dataset of a shard file: a box of one tensor.
struct SliceRecord {
  std::string tensor;
  std::string dataset;  // HDF5 dataset path inside the shard file
  Box box;
  bool operator==(const SliceRecord& other) const = default;
};

struct ShardRecord {
  std::string file;  // name relative to the checkpoint directory
  uint64_t bytes = 0;
  std::string xxh3_128;
  std::vector<SliceRecord> slices;
  bool operator==(const ShardRecord& other) const = default;
};

struct CheckpointLayout {
  int tp = 1;
  int dp = 1;
  bool zero1 = false;
  bool operator==(const CheckpointLayout& other) const = default;
};

struct Manifest {
  static constexpr int kFormatVersion = 2;  // 2: save_id

  std::string save_id;  // the save that wrote it; every shard file carries the same id
  int64_t step = 0;
  int64_t tokens_seen = 0;
  CheckpointLayout layout;
  nlohmann::json config = nlohmann::json::object();  // the run config, for the caller to compare
  std::vector<TensorInfo> tensors;
  std::vector<ShardRecord> shards;
  nlohmann::json state = nlohmann::json::object();  // free-form caller state (RNG, data loader)

  const TensorInfo* find_tensor(const std::string& name) const;  // nullptr when absent
};

nlohmann::json to_json(const TensorInfo& tensor);
nlohmann::json to_json(const ShardRecord& shard);
nlohmann::json to_json(const Manifest& manifest);
// `source` names the file being parsed in error messages.
TensorInfo tensor_info_from_json(const nlohmann::json& value, const std::string& source);
ShardRecord shard_record_from_json(const nlohmann::json& value, const std::string& source);
Manifest manifest_from_json(const nlohmann::json& value, const std::string& source);

// Throws t6::Error naming the file when it is missing, not JSON, or not a t6 manifest.
Manifest read_manifest(const std::filesystem::path& path);
void write_manifest(const Manifest& manifest, const std::filesystem::path& path);  // atomic and durable

}  // namespace t6::checkpoint
