#include "checkpoint/shard_file.h"

#include <hdf5.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <type_traits>
#include <utility>

#include "checkpoint/chunk_writer.h"
#include "checkpoint/file_checksum.h"
#include "checkpoint/save_faults.h"
#include "core/durable_file.h"
#include "core/error.h"
#include "core/hdf5_image.h"
#include "core/hdf5_util.h"

namespace t6::checkpoint {

static_assert(std::is_same_v<hid_t, int64_t>, "shard_file.h stores hid_t as int64_t");

namespace {

hid_t native_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::F64: return H5T_NATIVE_DOUBLE;
    case DType::BF16: case DType::U16: return H5T_NATIVE_UINT16;
    case DType::I32: return H5T_NATIVE_INT32;
    case DType::I64: return H5T_NATIVE_INT64;
    case DType::U32: return H5T_NATIVE_UINT32;
    case DType::U64: return H5T_NATIVE_UINT64;
  }
  T6_ASSERT(false);
}

std::vector<hsize_t> to_hsize(const Extents& extents) { return {extents.begin(), extents.end()}; }

Extents relative(const Extents& offset, const Extents& origin) {
  Extents result(offset.size());
  for (size_t axis = 0; axis < offset.size(); ++axis) result[axis] = offset[axis] - origin[axis];
  return result;
}

// Chunks of about 4 MiB, whole along the trailing axes where they fit, so a row split reads
// whole chunks and Fletcher32 checks stay cheap.
std::vector<hsize_t> chunk_shape(const Extents& shape, DType dtype) {
  const int64_t target_elements = std::max<int64_t>(1, (int64_t(4) << 20) / int64_t(dtype_size(dtype)));
  Extents chunk = shape;
  for (size_t axis = 0; axis < chunk.size() && extents_numel(chunk) > target_elements; ++axis) {
    int64_t inner = 1;
    for (size_t later = axis + 1; later < chunk.size(); ++later) inner *= chunk[later];
    chunk[axis] = std::max<int64_t>(1, std::min(chunk[axis], target_elements / inner));
  }
  return to_hsize(chunk);
}

nlohmann::json index_to_json(const ShardSummary& summary) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorInfo& tensor : summary.tensors) tensors.push_back(to_json(tensor));
  return {{"shard", to_json(summary.record)}, {"save_id", summary.save_id}, {"tensors", tensors}};
}

constexpr const char* kSaveIdAttribute = "save_id";

}  // namespace

std::filesystem::path shard_index_path(const std::filesystem::path& shard_path) {
  std::filesystem::path index = shard_path;
  index += ".index.json";
  return index;
}

ShardSummary read_shard_index(const std::filesystem::path& index_path) {
  std::ifstream in(index_path);
  T6_CHECK(in, index_path.string(), ": missing (its shard file was never finished)");
  const std::string source = index_path.string();
  try {
    nlohmann::json value = nlohmann::json::parse(in);
    ShardSummary summary;
    summary.record = shard_record_from_json(value.at("shard"), source);
    summary.save_id = value.at("save_id").get<std::string>();
    for (const nlohmann::json& tensor : value.at("tensors")) summary.tensors.push_back(tensor_info_from_json(tensor, source));
    return summary;
  } catch (const nlohmann::json::exception& error) {
    fail(str(source, ": not a valid shard index (", error.what(), ")"));
  }
}

ShardFileWriter::ShardFileWriter(std::filesystem::path path, std::string save_id) : path_(std::move(path)) {
  // Grown 64 MiB at a time. finish() hashes every byte as it goes out, so the shard is never read
  // back to checksum it.
  image_ = std::make_unique<Hdf5Image>(path_, size_t(64) << 20, H5P_DEFAULT, "checkpoint shard", disk_full_injected());
  Hdf5QuietErrors quiet;
  write_string_attribute(image_->file(), kSaveIdAttribute, save_id, path_.string());
  summary_.record.file = path_.filename().string();
  summary_.save_id = std::move(save_id);
}

ShardFileWriter::~ShardFileWriter() = default;

void ShardFileWriter::write(const std::string& tensor, const TensorRegion& region, const Tensor& data) {
  T6_CHECK(image_ != nullptr, path_.string(), ": write of '", tensor, "' after finish()");
  region.check_valid(tensor);
  T6_CHECK(data.device() == Device::CPU, "tensor '", tensor, "': copy it to host memory before writing a checkpoint");
  T6_CHECK(data.numel() == region.numel(), "tensor '", tensor, "': ", data.numel(), " elements given for region ",
           region.to_string(), " of ", region.numel());
  TensorInfo info{tensor, region.global_shape, data.dtype()};
  bool known = false;
  for (const TensorInfo& seen : summary_.tensors) {
    if (seen.name != tensor) continue;
    T6_CHECK(seen == info, "tensor '", tensor, "' written twice to ", path_.string(), " with different shape or dtype");
    known = true;
  }
  if (!known) summary_.tensors.push_back(info);

  Hdf5QuietErrors quiet;
  const size_t element_bytes = dtype_size(data.dtype());
  for (const StoredBox& stored : decompose(region)) {
    char dataset_name[32];
    std::snprintf(dataset_name, sizeof dataset_name, "slice_%06zu", summary_.record.slices.size());
    const std::string where = str(path_.string(), " dataset ", dataset_name, " (tensor '", tensor, "')");
    std::vector<hsize_t> dims = to_hsize(stored.box.shape);
    std::vector<hsize_t> chunk = chunk_shape(stored.box.shape, data.dtype());
    Hdf5Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
    Hdf5Handle properties(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(properties.get(), int(chunk.size()), chunk.data());
    H5Pset_fletcher32(properties.get());
    Hdf5Handle dataset(H5Dcreate2(image_->file(), dataset_name, native_type(data.dtype()), space.get(), H5P_DEFAULT,
                                  properties.get(), H5P_DEFAULT));
    T6_CHECK(dataset.valid(), where, ": cannot create dataset");
    const auto* source = static_cast<const unsigned char*>(data.raw()) + size_t(stored.storage_offset) * element_bytes;
    if (chunks_are_row_runs(dims, chunk)) {
      write_fletcher32_chunks(dataset.get(), source, dims, chunk, element_bytes, where);
      write_chunks_to_disk(dataset.get(), where);
    } else
      T6_CHECK(H5Dwrite(dataset.get(), native_type(data.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, source) >= 0, where,
               ": write failed (disk full?)");
    write_string_attribute(dataset.get(), "tensor", tensor, where);
    write_string_attribute(dataset.get(), "dtype", dtype_name(data.dtype()), where);
    write_int64_list_attribute(dataset.get(), "global_shape", region.global_shape, where);
    write_int64_list_attribute(dataset.get(), "global_offset", stored.box.offset, where);
    summary_.record.slices.push_back({tensor, dataset_name, stored.box});
  }
}

// Chunks written with H5Dwrite_chunk are final in the image, so they go to the disk now, while the
// next tensors are still being built.
void ShardFileWriter::write_chunks_to_disk(hid_t dataset, const std::string& where) {
  Hdf5Handle space(H5Dget_space(dataset));  // all of it selected
  hsize_t chunks = 0;
  T6_CHECK(H5Dget_num_chunks(dataset, space.get(), &chunks) >= 0, where, ": cannot count its chunks: ", hdf5_error_text());
  for (hsize_t index = 0; index < chunks; ++index) {
    haddr_t address = HADDR_UNDEF;
    hsize_t bytes = 0;
    T6_CHECK(H5Dget_chunk_info(dataset, space.get(), index, nullptr, nullptr, &address, &bytes) >= 0 &&
                 address != HADDR_UNDEF,
             where, ": cannot locate chunk ", index);
    image_->write_final_bytes(address, bytes);
  }
}

ShardSummary ShardFileWriter::finish() {
  T6_CHECK(image_ != nullptr, path_.string(), ": finish() called twice");
  {
    StreamingDigest digest;
    image_->write([&](const unsigned char* data, size_t size) { digest.update(data, size); });
    image_.reset();
    summary_.record.bytes = digest.finish().bytes;
    summary_.record.xxh3_128 = digest.finish().xxh3_128;
  }
  write_file_atomically(shard_index_path(path_), index_to_json(summary_).dump(1) + "\n");
  save_crash_point("shard_written");
  return summary_;
}

ShardFileReader::ShardFileReader(std::filesystem::path path) : path_(std::move(path)) {
  Hdf5QuietErrors quiet;
  T6_CHECK(std::filesystem::exists(path_), "checkpoint shard ", path_.string(), " is missing");
  file_id_ = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  T6_CHECK(file_id_ >= 0, "cannot open checkpoint shard ", path_.string(), " (not HDF5, or truncated)");
}

std::string ShardFileReader::save_id() const {
  Hdf5QuietErrors quiet;
  if (H5Aexists(file_id_, kSaveIdAttribute) <= 0) return "";
  return read_string_attribute(file_id_, kSaveIdAttribute, path_.string());
}

ShardFileReader::~ShardFileReader() {
  if (file_id_ >= 0) H5Fclose(file_id_);
}

void ShardFileReader::read(const SliceRecord& slice, DType dtype, const Box& part, void* destination,
                           const Box& destination_frame) const {
  Hdf5QuietErrors quiet;
  const std::string where = str(path_.string(), " dataset ", slice.dataset, " (tensor '", slice.tensor, "')");
  Hdf5Handle dataset(H5Dopen2(file_id_, slice.dataset.c_str(), H5P_DEFAULT));
  T6_CHECK(dataset.valid(), where, ": dataset is missing");
  Hdf5Handle file_space(H5Dget_space(dataset.get()));
  std::vector<hsize_t> stored_dims(slice.box.shape.size());
  T6_CHECK(H5Sget_simple_extent_ndims(file_space.get()) == int(stored_dims.size()) &&
               H5Sget_simple_extent_dims(file_space.get(), stored_dims.data(), nullptr) >= 0 &&
               stored_dims == to_hsize(slice.box.shape),
           where, ": dataset shape differs from the manifest's ", extents_to_string(slice.box.shape));
  Hdf5Handle stored_type(H5Dget_type(dataset.get()));
  T6_CHECK(H5Tget_size(stored_type.get()) == dtype_size(dtype), where, ": stored element size differs from dtype ",
           dtype_name(dtype));

  std::vector<hsize_t> count = to_hsize(part.shape);
  std::vector<hsize_t> file_start = to_hsize(relative(part.offset, slice.box.offset));
  std::vector<hsize_t> memory_start = to_hsize(relative(part.offset, destination_frame.offset));
  std::vector<hsize_t> memory_dims = to_hsize(destination_frame.shape);
  Hdf5Handle memory_space(H5Screate_simple(int(memory_dims.size()), memory_dims.data(), nullptr));
  T6_ASSERT(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, file_start.data(), nullptr, count.data(), nullptr) >= 0);
  T6_ASSERT(H5Sselect_hyperslab(memory_space.get(), H5S_SELECT_SET, memory_start.data(), nullptr, count.data(),
                                nullptr) >= 0);
  T6_CHECK(H5Dread(dataset.get(), native_type(dtype), memory_space.get(), file_space.get(), H5P_DEFAULT,
                   destination) >= 0,
           where, ": read failed (corrupted data: Fletcher32 checksum mismatch, or a truncated file)");
}

ShardSummary ShardFileReader::read_contents() const {
  Hdf5QuietErrors quiet;
  ShardSummary summary;
  summary.record.file = path_.filename().string();
  summary.save_id = save_id();
  H5G_info_t group_info;
  T6_CHECK(H5Gget_info(file_id_, &group_info) >= 0, path_.string(), ": cannot list datasets");
  for (hsize_t index = 0; index < group_info.nlinks; ++index) {
    char name[256] = {};
    T6_CHECK(H5Lget_name_by_idx(file_id_, ".", H5_INDEX_NAME, H5_ITER_INC, index, name, sizeof name, H5P_DEFAULT) >= 0,
             path_.string(), ": cannot list datasets");
    const std::string where = str(path_.string(), " dataset ", name);
    Hdf5Handle dataset(H5Dopen2(file_id_, name, H5P_DEFAULT));
    T6_CHECK(dataset.valid(), where, ": cannot open");
    SliceRecord slice{read_string_attribute(dataset.get(), "tensor", where), name, {}};
    slice.box.offset = read_int64_list_attribute(dataset.get(), "global_offset", where);
    Hdf5Handle space(H5Dget_space(dataset.get()));
    std::vector<hsize_t> dims(size_t(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    slice.box.shape.assign(dims.begin(), dims.end());
    TensorInfo tensor{slice.tensor, read_int64_list_attribute(dataset.get(), "global_shape", where),
                      dtype_from_name(read_string_attribute(dataset.get(), "dtype", where))};
    bool known = false;
    for (const TensorInfo& seen : summary.tensors) known = known || seen.name == tensor.name;
    if (!known) summary.tensors.push_back(std::move(tensor));
    summary.record.slices.push_back(std::move(slice));
  }
  return summary;
}

}  // namespace t6::checkpoint
