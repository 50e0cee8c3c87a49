// Checks that a checkpoint directory is whole: its manifest records the step its directory is named
// for, every shard file the manifest lists is present with its recorded size (and, when asked, its
// XXH3-128 and the slices the file itself says it holds), and every tensor is tiled exactly by its
// slices.
// Resume runs the cheap form; `t6_ckpt verify` the full one, which also reads a corrupt file dataset
// by dataset (Fletcher32) to name the damaged datasets.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/file_checksum.h"
#include "checkpoint/manifest.h"

namespace t6::checkpoint {

struct CheckpointProblem {
  std::string file;     // path of the file at fault (the manifest, or a shard)
  std::string dataset;  // the damaged dataset and its tensor, when known
  std::string message;
  std::string to_string() const;  // "FILE [dataset D]: MESSAGE"
};

enum class ChecksumCheck { skip, verify };

// With `known`, a shard file whose digest it holds is not read again.
std::vector<CheckpointProblem> find_checkpoint_problems(const std::filesystem::path& checkpoint_dir,
                                                        const Manifest& manifest, ChecksumCheck checksums,
                                                        const KnownDigests* known = nullptr);

// The full pass: the manifest parses, and find_checkpoint_problems with checksums. Empty when whole.
std::vector<CheckpointProblem> verify_checkpoint(const std::filesystem::path& checkpoint_dir);

}  // namespace t6::checkpoint
