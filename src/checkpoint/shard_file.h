// One rank's shard file of a checkpoint (serial HDF5). Each dataset `slice_NNNNNN` holds one box of
// one global tensor, chunked with HDF5's Fletcher32 filter so a corrupted chunk is named on read,
// with attributes `tensor` (the logical name, which may hold '/'), `dtype` (BF16 is stored as
// uint16), `global_shape` and `global_offset`. Finishing a file writes `<file>.index.json` next to
// it (its size, XXH3-128 and slice list), from which rank 0 assembles the manifest without
// re-reading every shard. The file attribute `save_id` names the save the file belongs to, so files
// of two saves are never taken for one checkpoint.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "checkpoint/tensor_region.h"
#include "core/tensor.h"

namespace t6 {
class Hdf5Image;
}

namespace t6::checkpoint {

// What a shard file holds: its manifest record and the tensors its slices belong to.
struct ShardSummary {
  ShardRecord record;
  std::vector<TensorInfo> tensors;
  std::string save_id;
};

std::filesystem::path shard_index_path(const std::filesystem::path& shard_path);
ShardSummary read_shard_index(const std::filesystem::path& index_path);

class ShardFileWriter {
 public:
  // Builds the file in memory; its finished chunks go to `path` in the background (core/hdf5_image.h).
  ShardFileWriter(std::filesystem::path path, std::string save_id);
  ~ShardFileWriter();  // an unfinished file is removed
  ShardFileWriter(const ShardFileWriter&) = delete;
  ShardFileWriter& operator=(const ShardFileWriter&) = delete;

  // Stores `data` (host memory, `region.numel()` elements in the region's row-major order) as the
  // region of global tensor `tensor`. A tensor may be written in several regions.
  void write(const std::string& tensor, const TensorRegion& region, const Tensor& data);

  // Writes the rest of the file, checksumming all of it on the way out, fsyncs it and writes its
  // index next to it (durably). Throws naming the file when the disk is full; the caller removes the staging directory.
  ShardSummary finish();

 private:
  void write_chunks_to_disk(int64_t dataset, const std::string& where);  // dataset: a hid_t

  std::filesystem::path path_;
  std::unique_ptr<Hdf5Image> image_;  // null once finished
  ShardSummary summary_;
};

class ShardFileReader {
 public:
  explicit ShardFileReader(std::filesystem::path path);  // read-only; Error naming the file on failure
  ~ShardFileReader();
  ShardFileReader(const ShardFileReader&) = delete;
  ShardFileReader& operator=(const ShardFileReader&) = delete;

  // Reads `part` (global coordinates, inside slice.box) of the slice's dataset into `destination`,
  // a row-major array of `dtype` covering `destination_frame` (global coordinates, holding `part`).
  void read(const SliceRecord& slice, DType dtype, const Box& part, void* destination,
            const Box& destination_frame) const;

  // The id of the save that wrote the file ("" for a file without one).
  std::string save_id() const;

  // The slices and tensors the file's own attributes describe (bytes and checksum left empty).
  ShardSummary read_contents() const;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int64_t file_id_ = -1;  // hid_t
};

}  // namespace t6::checkpoint
