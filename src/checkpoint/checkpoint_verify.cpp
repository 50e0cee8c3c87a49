#include "checkpoint/checkpoint_verify.h"

#include <algorithm>
#include <map>
#include <optional>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/file_checksum.h"
#include "checkpoint/shard_file.h"
#include "core/error.h"

namespace t6::checkpoint {

namespace {

// Reads every slice of a file whose checksum failed, so HDF5's Fletcher32 names the bad datasets.
void find_damaged_datasets(const std::filesystem::path& path, const ShardRecord& shard, const Manifest& manifest,
                           std::vector<CheckpointProblem>& problems) {
  std::unique_ptr<ShardFileReader> reader;
  try {
    reader = std::make_unique<ShardFileReader>(path);
  } catch (const Error& error) {
    problems.push_back({path.string(), "", error.what()});
    return;
  }
  constexpr int64_t kBlockElements = int64_t(1) << 22;
  std::vector<unsigned char> buffer;
  for (const SliceRecord& slice : shard.slices) {
    const TensorInfo* tensor = manifest.find_tensor(slice.tensor);
    if (!tensor || slice.box.numel() == 0) continue;
    // Row blocks along axis 0 bound the buffer whatever the slice size.
    const int64_t row_elements = slice.box.numel() / slice.box.shape[0];
    const int64_t rows_per_block = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(1, row_elements));
    try {
      for (int64_t row = 0; row < slice.box.shape[0]; row += rows_per_block) {
        Box block = slice.box;
        block.offset[0] += row;
        block.shape[0] = std::min(rows_per_block, slice.box.shape[0] - row);
        buffer.resize(size_t(block.numel()) * dtype_size(tensor->dtype));
        reader->read(slice, tensor->dtype, block, buffer.data(), block);
      }
    } catch (const Error& error) {
      problems.push_back({path.string(), str(slice.dataset, " (tensor '", slice.tensor, "')"),
                          "unreadable: corrupted data (Fletcher32 mismatch) or damaged metadata"});
    }
  }
}

// The save id a shard file carries; "" when it cannot be read (a damaged file is named otherwise).
std::string save_id_of(const std::filesystem::path& path) {
  try {
    return ShardFileReader(path).save_id();
  } catch (const Error&) {
    return "";
  }
}

// The checksum covers the shard file, not the manifest: a manifest edited by hand (a dataset name,
// a slice box, a dtype) must still agree with what the file itself says it holds.
void check_slices_against_file(const std::filesystem::path& path, const ShardRecord& shard, const Manifest& manifest,
                               std::vector<CheckpointProblem>& problems) {
  ShardSummary contents;
  try {
    contents = ShardFileReader(path).read_contents();
  } catch (const Error& error) {
    problems.push_back({path.string(), "", error.what()});
    return;
  }
  for (const SliceRecord& slice : shard.slices) {
    const std::string dataset = str(slice.dataset, " (tensor '", slice.tensor, "')");
    const auto held = std::find_if(contents.record.slices.begin(), contents.record.slices.end(),
                                   [&](const SliceRecord& stored) { return stored.dataset == slice.dataset; });
    if (held == contents.record.slices.end()) {
      problems.push_back({path.string(), dataset, "the manifest lists it but the file does not hold it"});
      continue;
    }
    if (held->tensor != slice.tensor || held->box != slice.box) {
      problems.push_back({path.string(), dataset,
                          str("the manifest records tensor '", slice.tensor, "' at offset ",
                              extents_to_string(slice.box.offset), " shape ", extents_to_string(slice.box.shape),
                              " but the file holds tensor '", held->tensor, "' at offset ",
                              extents_to_string(held->box.offset), " shape ", extents_to_string(held->box.shape))});
      continue;
    }
    const TensorInfo* listed = manifest.find_tensor(slice.tensor);
    for (const TensorInfo& stored : contents.tensors) {
      if (listed && stored.name == slice.tensor && stored.dtype != listed->dtype)
        problems.push_back({path.string(), dataset, str("the manifest records dtype ", dtype_name(listed->dtype),
                                                        " but the file holds ", dtype_name(stored.dtype))});
    }
  }
  if (contents.record.slices.size() != shard.slices.size())
    problems.push_back({path.string(), "", str("the file holds ", contents.record.slices.size(),
                                               " datasets but the manifest lists ", shard.slices.size())});
}

// A step directory's name says which step it holds; its manifest must say the same, or a resume
// would take it for another step (and set aside the very directory it resumes from).
void check_step_matches_directory(const std::filesystem::path& checkpoint_dir, const Manifest& manifest,
                                  std::vector<CheckpointProblem>& problems) {
  const std::filesystem::path name = checkpoint_dir.filename().empty() ? checkpoint_dir.parent_path().filename()
                                                                       : checkpoint_dir.filename();
  const std::optional<int64_t> named = parse_step_dir_name(name.string());
  if (named && *named != manifest.step)
    problems.push_back({(checkpoint_dir / "manifest.json").string(), "",
                        str("records step ", manifest.step, " but its directory is ", name.string(),
                            " (edited, or copied from another checkpoint)")});
}

void check_shard_file(const std::filesystem::path& checkpoint_dir, const ShardRecord& shard, const Manifest& manifest,
                      ChecksumCheck checksums, const KnownDigests* known, std::vector<CheckpointProblem>& problems) {
  const std::filesystem::path path = checkpoint_dir / shard.file;
  std::error_code error;
  const uintmax_t bytes = std::filesystem::file_size(path, error);
  if (error) {
    problems.push_back({path.string(), "", "shard file is missing"});
    return;
  }
  if (bytes != shard.bytes) {
    problems.push_back({path.string(), "", str("size is ", bytes, " bytes but the manifest records ", shard.bytes,
                                               " (truncated or replaced)")});
    return;
  }
  if (checksums == ChecksumCheck::skip) return;
  const auto taken = known ? known->find(path.lexically_normal()) : KnownDigests::const_iterator{};
  const FileDigest digest = known && taken != known->end() ? taken->second : digest_file(path);
  if (digest.xxh3_128 == shard.xxh3_128) {
    check_slices_against_file(path, shard, manifest, problems);
    return;
  }
  if (std::string file_save = save_id_of(path); !file_save.empty() && file_save != manifest.save_id) {
    problems.push_back({path.string(), "", str("belongs to save '", file_save, "' but the manifest is of save '",
                                               manifest.save_id, "' (files of two saves mixed)")});
    return;
  }
  problems.push_back({path.string(), "", str("XXH3-128 checksum is ", digest.xxh3_128, " but the manifest records ",
                                             shard.xxh3_128, " (corrupted)")});
  find_damaged_datasets(path, shard, manifest, problems);
}

void check_tiling(const std::filesystem::path& manifest_path, const Manifest& manifest,
                  std::vector<CheckpointProblem>& problems) {
  std::map<std::string, std::vector<Box>> boxes;
  for (const TensorInfo& tensor : manifest.tensors) boxes[tensor.name];
  for (const ShardRecord& shard : manifest.shards) {
    for (const SliceRecord& slice : shard.slices) {
      if (!boxes.count(slice.tensor)) {
        problems.push_back({manifest_path.string(), "", str("shard ", shard.file, " holds tensor '", slice.tensor,
                                                             "' that is not in the tensor table")});
        continue;
      }
      boxes[slice.tensor].push_back(slice.box);
    }
  }
  for (const TensorInfo& tensor : manifest.tensors) {
    if (auto problem = tiling_problem(tensor.shape, boxes[tensor.name]))
      problems.push_back({manifest_path.string(), "", str("tensor '", tensor.name, "': ", *problem)});
  }
}

}  // namespace

std::string CheckpointProblem::to_string() const {
  return dataset.empty() ? str(file, ": ", message) : str(file, " dataset ", dataset, ": ", message);
}

std::vector<CheckpointProblem> find_checkpoint_problems(const std::filesystem::path& checkpoint_dir,
                                                        const Manifest& manifest, ChecksumCheck checksums,
                                                        const KnownDigests* known) {
  std::vector<CheckpointProblem> problems;
  check_step_matches_directory(checkpoint_dir, manifest, problems);
  for (const ShardRecord& shard : manifest.shards)
    check_shard_file(checkpoint_dir, shard, manifest, checksums, known, problems);
  check_tiling(checkpoint_dir / "manifest.json", manifest, problems);
  return problems;
}

std::vector<CheckpointProblem> verify_checkpoint(const std::filesystem::path& checkpoint_dir) {
  const std::filesystem::path manifest_path = checkpoint_dir / "manifest.json";
  Manifest manifest;
  try {
    manifest = read_manifest(manifest_path);
  } catch (const Error& error) {
    // read_manifest's messages start with the path, which the problem carries already.
    std::string message = error.what();
    const std::string prefix = manifest_path.string() + ": ";
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    return {{manifest_path.string(), "", message}};
  }
  return find_checkpoint_problems(checkpoint_dir, manifest, ChecksumCheck::verify);
}

}  // namespace t6::checkpoint
