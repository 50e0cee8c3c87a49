#include "checkpoint/manifest.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/durable_file.h"
#include "core/error.h"

namespace t6::checkpoint {

using nlohmann::json;

namespace {

constexpr const char* kFormatName = "t6-checkpoint";

// Reads `key` of `object` as T, with an error that says which key of which file is wrong.
template <class T>
T required(const json& object, const char* key, const std::string& source) {
  T6_CHECK(object.is_object() && object.contains(key), source, ": missing key '", key, "'");
  try {
    return object.at(key).get<T>();
  } catch (const json::exception& error) {
    fail(str(source, ": key '", key, "' has the wrong type (", error.what(), ")"));
  }
}

// Values no save writes (a manifest edited by hand): refused here, before anything acts on them.
void check_values(const Manifest& manifest, const std::string& source) {
  T6_CHECK(manifest.step >= 0, source, ": step ", manifest.step, " is negative");
  T6_CHECK(manifest.tokens_seen >= 0, source, ": tokens_seen ", manifest.tokens_seen, " is negative");
  T6_CHECK(manifest.layout.tp >= 1 && manifest.layout.dp >= 1, source, ": layout TP ", manifest.layout.tp, " × DP ",
           manifest.layout.dp, " is not a layout (each must be at least 1)");
  std::set<std::string> files;
  for (const ShardRecord& shard : manifest.shards) {
    const std::filesystem::path file(shard.file);
    T6_CHECK(!shard.file.empty() && file.filename() == file && shard.file != "." && shard.file != "..", source,
             ": shard file '", shard.file, "' is not a file name inside the checkpoint directory");
    T6_CHECK(files.insert(shard.file).second, source, ": shard file '", shard.file, "' is listed twice");
  }
}

}  // namespace

const TensorInfo* Manifest::find_tensor(const std::string& name) const {
  for (const TensorInfo& tensor : tensors)
    if (tensor.name == name) return &tensor;
  return nullptr;
}

json to_json(const TensorInfo& tensor) {
  return {{"name", tensor.name}, {"shape", tensor.shape}, {"dtype", dtype_name(tensor.dtype)}};
}

json to_json(const ShardRecord& shard) {
  json slices = json::array();
  for (const SliceRecord& slice : shard.slices) {
    slices.push_back({{"tensor", slice.tensor}, {"dataset", slice.dataset}, {"offset", slice.box.offset},
                      {"shape", slice.box.shape}});
  }
  return {{"file", shard.file}, {"bytes", shard.bytes}, {"xxh3_128", shard.xxh3_128}, {"slices", slices}};
}

json to_json(const Manifest& manifest) {
  json tensors = json::array();
  for (const TensorInfo& tensor : manifest.tensors) tensors.push_back(to_json(tensor));
  json shards = json::array();
  for (const ShardRecord& shard : manifest.shards) shards.push_back(to_json(shard));
  return {{"format", kFormatName},
          {"format_version", Manifest::kFormatVersion},
          {"save_id", manifest.save_id},
          {"step", manifest.step},
          {"tokens_seen", manifest.tokens_seen},
          {"layout", {{"tp", manifest.layout.tp}, {"dp", manifest.layout.dp}, {"zero1", manifest.layout.zero1}}},
          {"config", manifest.config},
          {"tensors", tensors},
          {"shards", shards},
          {"state", manifest.state}};
}

TensorInfo tensor_info_from_json(const json& value, const std::string& source) {
  TensorInfo tensor;
  tensor.name = required<std::string>(value, "name", source);
  const std::string where = str(source, ": tensor '", tensor.name, "'");
  tensor.shape = required<Extents>(value, "shape", where);
  try {
    tensor.dtype = dtype_from_name(required<std::string>(value, "dtype", where));
  } catch (const Error& error) {
    fail(str(where, ": ", error.what()));
  }
  return tensor;
}

ShardRecord shard_record_from_json(const json& value, const std::string& source) {
  ShardRecord shard;
  shard.file = required<std::string>(value, "file", source);
  const std::string where = str(source, ": shard '", shard.file, "'");
  shard.bytes = required<uint64_t>(value, "bytes", where);
  shard.xxh3_128 = required<std::string>(value, "xxh3_128", where);
  for (const json& slice : required<json>(value, "slices", where)) {
    SliceRecord record;
    record.tensor = required<std::string>(slice, "tensor", where);
    record.dataset = required<std::string>(slice, "dataset", where);
    record.box.offset = required<Extents>(slice, "offset", where);
    record.box.shape = required<Extents>(slice, "shape", where);
    shard.slices.push_back(std::move(record));
  }
  return shard;
}

Manifest manifest_from_json(const json& value, const std::string& source) {
  T6_CHECK(value.is_object() && value.value("format", "") == kFormatName, source, ": not a t6 checkpoint manifest");
  int version = required<int>(value, "format_version", source);
  T6_CHECK(version == Manifest::kFormatVersion, source, ": format version ", version, ", this t6 reads version ",
           Manifest::kFormatVersion);
  Manifest manifest;
  manifest.save_id = required<std::string>(value, "save_id", source);
  manifest.step = required<int64_t>(value, "step", source);
  manifest.tokens_seen = required<int64_t>(value, "tokens_seen", source);
  const json layout = required<json>(value, "layout", source);
  manifest.layout.tp = required<int>(layout, "tp", source + " layout");
  manifest.layout.dp = required<int>(layout, "dp", source + " layout");
  manifest.layout.zero1 = required<bool>(layout, "zero1", source + " layout");
  manifest.config = required<json>(value, "config", source);
  for (const json& tensor : required<json>(value, "tensors", source))
    manifest.tensors.push_back(tensor_info_from_json(tensor, source));
  for (const json& shard : required<json>(value, "shards", source))
    manifest.shards.push_back(shard_record_from_json(shard, source));
  manifest.state = required<json>(value, "state", source);
  check_values(manifest, source);
  return manifest;
}

Manifest read_manifest(const std::filesystem::path& path) {
  std::ifstream in(path);
  T6_CHECK(in, path.string(), ": no manifest (an interrupted save, or not a checkpoint directory)");
  json value;
  try {
    value = json::parse(in);
  } catch (const json::exception& error) {
    fail(str(path.string(), ": manifest is not valid JSON (", error.what(), ")"));
  }
  return manifest_from_json(value, path.string());
}

void write_manifest(const Manifest& manifest, const std::filesystem::path& path) {
  write_file_atomically(path, to_json(manifest).dump(1) + "\n");
}

}  // namespace t6::checkpoint
