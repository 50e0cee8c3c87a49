#include "checkpoint/checkpoint_reader.h"

#include "core/error.h"

namespace t6::checkpoint {

CheckpointReader::CheckpointReader(std::filesystem::path checkpoint_dir, Manifest manifest)
    : dir_(std::move(checkpoint_dir)), manifest_(std::move(manifest)), open_files_(manifest_.shards.size()) {
  for (const TensorInfo& tensor : manifest_.tensors) pieces_[tensor.name];
  for (size_t shard = 0; shard < manifest_.shards.size(); ++shard) {
    for (const SliceRecord& slice : manifest_.shards[shard].slices) {
      auto pieces = pieces_.find(slice.tensor);
      T6_CHECK(pieces != pieces_.end(), dir_.string(), ": shard ", manifest_.shards[shard].file, " holds tensor '",
               slice.tensor, "' that the manifest's tensor table lacks");
      const TensorInfo& info = *manifest_.find_tensor(slice.tensor);
      T6_CHECK(box_fits(info.shape, slice.box), dir_.string(), ": shard ", manifest_.shards[shard].file,
               " dataset ", slice.dataset, " (", slice.box.to_string(), ") lies outside tensor '", slice.tensor,
               "' of shape ", extents_to_string(info.shape));
      pieces->second.push_back({shard, &slice});
    }
  }
  for (const auto& [tensor, pieces] : pieces_) {
    std::vector<Box> boxes;
    for (const Piece& piece : pieces) boxes.push_back(piece.slice->box);
    if (auto overlap = overlap_problem(boxes)) fail(str(dir_.string(), ": tensor '", tensor, "': ", *overlap));
  }
}

CheckpointReader::~CheckpointReader() = default;

const ShardFileReader& CheckpointReader::open_shard(size_t shard) {
  if (!open_files_[shard]) {
    auto file = std::make_unique<ShardFileReader>(dir_ / manifest_.shards[shard].file);
    const std::string file_save = file->save_id();
    T6_CHECK(file_save == manifest_.save_id, file->path().string(), ": belongs to save '", file_save,
             "' but the manifest is of save '", manifest_.save_id, "' (files of two saves mixed)");
    open_files_[shard] = std::move(file);
  }
  return *open_files_[shard];
}

void CheckpointReader::read(const std::string& tensor, const TensorRegion& region, const Tensor& out) {
  const TensorInfo* info = manifest_.find_tensor(tensor);
  T6_CHECK(info, "tensor '", tensor, "' is not in checkpoint ", dir_.string());
  T6_CHECK(info->shape == region.global_shape, "tensor '", tensor, "' has shape ", extents_to_string(info->shape),
           " in checkpoint ", dir_.string(), " but ", extents_to_string(region.global_shape), " is expected");
  T6_CHECK(info->dtype == out.dtype(), "tensor '", tensor, "' is ", dtype_name(info->dtype), " in checkpoint ",
           dir_.string(), " but ", dtype_name(out.dtype()), " is requested");
  region.check_valid(tensor);
  T6_CHECK(out.device() == Device::CPU, "tensor '", tensor, "': checkpoints are read into host memory");
  T6_CHECK(out.numel() == region.numel(), "tensor '", tensor, "': region ", region.to_string(), " has ",
           region.numel(), " elements but the output holds ", out.numel());

  const size_t element_bytes = dtype_size(info->dtype);
  int64_t filled = 0;
  for (const StoredBox& wanted : decompose(region)) {
    void* destination = static_cast<unsigned char*>(out.raw()) + size_t(wanted.storage_offset) * element_bytes;
    for (const Piece& piece : pieces_.at(tensor)) {
      std::optional<Box> common = intersect(wanted.box, piece.slice->box);
      if (!common) continue;
      open_shard(piece.shard).read(*piece.slice, info->dtype, *common, destination, wanted.box);
      filled += common->numel();
    }
  }
  // Slices never overlap (checked on construction), so a shortfall is exactly the uncovered part.
  T6_CHECK(filled == region.numel(), "tensor '", tensor, "' region ", region.to_string(), ": ",
           region.numel() - filled, " of ", region.numel(), " elements are in no shard file of checkpoint ",
           dir_.string());
}

}  // namespace t6::checkpoint
