// Reads any region of any tensor of a checkpoint, whatever layout saved it: the manifest says which
// shard file holds which box, and each requested region is filled from the boxes it overlaps with
// hyperslab reads (resharding on load). Needs no MPI; files are opened on first use.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "checkpoint/shard_file.h"
#include "checkpoint/tensor_region.h"
#include "core/tensor.h"

namespace t6::checkpoint {

class CheckpointReader {
 public:
  // Throws t6::Error when two slices of a tensor overlap or a slice disagrees with the tensor table.
  CheckpointReader(std::filesystem::path checkpoint_dir, Manifest manifest);
  ~CheckpointReader();

  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool has_tensor(const std::string& tensor) const { return pieces_.count(tensor) > 0; }

  // Fills `out` (host memory, region.numel() elements of the tensor's dtype, in the region's
  // row-major order). Errors name the tensor: absent, another global shape or dtype than the
  // checkpoint's, or part of the region in no shard file.
  void read(const std::string& tensor, const TensorRegion& region, const Tensor& out);

 private:
  struct Piece {
    size_t shard;              // index into manifest_.shards
    const SliceRecord* slice;  // points into manifest_
  };
  const ShardFileReader& open_shard(size_t shard);

  std::filesystem::path dir_;
  Manifest manifest_;
  std::map<std::string, std::vector<Piece>> pieces_;
  std::vector<std::unique_ptr<ShardFileReader>> open_files_;  // by shard index; null until used
};

}  // namespace t6::checkpoint
