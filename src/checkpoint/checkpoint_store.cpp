#include "checkpoint/checkpoint_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>

#include "core/durable_file.h"
#include "checkpoint/shard_file.h"
#include "core/error.h"

namespace t6::checkpoint {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLatestName = "latest";
constexpr const char* kManifestName = "manifest.json";
constexpr const char* kIndexSuffix = ".index.json";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A staging directory (".tmp-") or an older save being replaced (".old-") of any job.
bool is_leftover_of_a_save(const std::string& name) {
  return name.rfind("step_", 0) == 0 &&
         (name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos);
}

// The shard summaries in a staging directory; every shard file must have its index.
std::vector<ShardSummary> read_shard_summaries(const fs::path& staging) {
  std::vector<ShardSummary> summaries;
  std::vector<std::string> shard_files;
  for (const fs::directory_entry& entry : fs::directory_iterator(staging)) {
    const std::string name = entry.path().filename().string();
    if (ends_with(name, kIndexSuffix)) {
      summaries.push_back(read_shard_index(entry.path()));
    } else if (ends_with(name, ".h5")) {
      shard_files.push_back(name);
    }
  }
  for (const std::string& file : shard_files) {
    T6_CHECK(fs::exists(shard_index_path(staging / file)), (staging / file).string(),
             ": shard has no index: its writer did not call finish()");
  }
  std::sort(summaries.begin(), summaries.end(),
            [](const ShardSummary& a, const ShardSummary& b) { return a.record.file < b.record.file; });
  return summaries;
}

// The tensor table the shards agree on, checked against the caller's expected table.
std::vector<TensorInfo> tensor_table(const fs::path& staging, const std::vector<ShardSummary>& summaries,
                                     const std::vector<TensorInfo>& expected) {
  std::vector<TensorInfo> found;
  std::map<std::string, std::string> first_file;
  for (const ShardSummary& summary : summaries) {
    for (const TensorInfo& tensor : summary.tensors) {
      auto seen = std::find_if(found.begin(), found.end(), [&](const TensorInfo& t) { return t.name == tensor.name; });
      if (seen == found.end()) {
        found.push_back(tensor);
        first_file[tensor.name] = summary.record.file;
        continue;
      }
      T6_CHECK(*seen == tensor, staging.string(), ": tensor '", tensor.name, "' is ", extents_to_string(seen->shape),
               " ", dtype_name(seen->dtype), " in ", first_file[tensor.name], " but ", extents_to_string(tensor.shape),
               " ", dtype_name(tensor.dtype), " in ", summary.record.file);
    }
  }
  if (expected.empty()) return found;
  for (const TensorInfo& tensor : expected) {
    auto seen = std::find_if(found.begin(), found.end(), [&](const TensorInfo& t) { return t.name == tensor.name; });
    T6_CHECK(seen != found.end(), staging.string(), ": no shard holds tensor '", tensor.name, "'");
    T6_CHECK(*seen == tensor, staging.string(), ": tensor '", tensor.name, "' was written as ",
             extents_to_string(seen->shape), " ", dtype_name(seen->dtype), " but the model has ",
             extents_to_string(tensor.shape), " ", dtype_name(tensor.dtype));
  }
  for (const TensorInfo& tensor : found) {
    T6_CHECK(std::any_of(expected.begin(), expected.end(), [&](const TensorInfo& t) { return t.name == tensor.name; }),
             staging.string(), ": shard ", first_file[tensor.name], " holds tensor '", tensor.name,
             "' that the model does not have");
  }
  return expected;
}

std::string read_latest_name(const fs::path& checkpoints_dir) {
  const fs::path latest = checkpoints_dir / kLatestName;
  std::error_code error;
  std::string name;
  if (fs::is_symlink(latest, error)) {
    name = fs::read_symlink(latest).filename().string();  // a relative symlink, as DESIGN.md allows
  } else {
    std::ifstream in(latest);
    T6_CHECK(in, latest.string(), ": missing (no checkpoint was ever completed here)");
    std::getline(in, name);
  }
  T6_CHECK(parse_step_dir_name(name), latest.string(), ": holds '", name, "', not a step directory name");
  return name;
}

void prune(const fs::path& checkpoints_dir, const fs::path& just_written, int keep_last) {
  if (keep_last <= 0) return;
  std::vector<fs::path> others;
  for (const fs::path& dir : list_step_dirs(checkpoints_dir))
    if (dir.filename() != just_written.filename()) others.push_back(dir);
  // list_step_dirs is oldest first; the newest keep_last − 1 others stay beside the one just written.
  const size_t keep_others = size_t(keep_last - 1);
  for (size_t index = 0; index + keep_others < others.size(); ++index) fs::remove_all(others[index]);
}

}  // namespace

std::string step_dir_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

std::optional<int64_t> parse_step_dir_name(const std::string& name) {
  const std::string prefix = "step_";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 18) return std::nullopt;
  int64_t step = 0;
  for (size_t index = prefix.size(); index < name.size(); ++index) {
    if (name[index] < '0' || name[index] > '9') return std::nullopt;
    step = step * 10 + (name[index] - '0');
  }
  return step;
}

std::string make_save_nonce() {
  std::random_device entropy;
  const uint64_t mixed = (uint64_t(entropy()) << 32) ^ uint64_t(entropy()) ^
                         uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^ uint64_t(::getpid());
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(mixed));
  return nonce;
}

std::vector<fs::path> list_step_dirs(const fs::path& checkpoints_dir) {
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_dir, error)) {
    if (!entry.is_directory()) continue;
    if (auto step = parse_step_dir_name(entry.path().filename().string())) steps.emplace_back(*step, entry.path());
  }
  std::sort(steps.begin(), steps.end());
  std::vector<fs::path> dirs;
  for (auto& [step, dir] : steps) dirs.push_back(std::move(dir));
  return dirs;
}

CheckpointStore::CheckpointStore(fs::path checkpoints_dir, int keep_last, std::string save_nonce)
    : checkpoints_dir_(std::move(checkpoints_dir)), keep_last_(keep_last), save_nonce_(std::move(save_nonce)) {
  T6_CHECK(keep_last_ >= 0, "checkpoint.keep_last must be >= 0 (0 keeps all), got ", keep_last_);
  T6_CHECK(!save_nonce_.empty() && save_nonce_.find('/') == std::string::npos, "invalid checkpoint save nonce '",
           save_nonce_, "'");
}

fs::path CheckpointStore::staging_dir(int64_t step) const {
  return checkpoints_dir_ / (step_dir_name(step) + ".tmp-" + save_nonce_);
}

fs::path CheckpointStore::begin_save(int64_t step) const {
  fs::create_directories(checkpoints_dir_);
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_dir_)) {
    if (is_leftover_of_a_save(entry.path().filename().string())) fs::remove_all(entry.path());
  }
  const fs::path staging = staging_dir(step);
  fs::create_directory(staging);
  fsync_directory(checkpoints_dir_);
  return staging;
}

fs::path CheckpointStore::commit_save(const SaveInfo& info) const {
  const fs::path staging = staging_dir(info.step);
  T6_CHECK(fs::is_directory(staging), staging.string(), ": no save in progress (begin_save was not called)");

  const std::vector<ShardSummary> summaries = read_shard_summaries(staging);
  Manifest manifest;
  manifest.step = info.step;
  manifest.tokens_seen = info.tokens_seen;
  manifest.layout = info.layout;
  manifest.config = info.config;
  manifest.state = info.state;
  manifest.tensors = tensor_table(staging, summaries, info.tensors);
  for (const ShardSummary& summary : summaries) manifest.shards.push_back(summary.record);
  const std::vector<CheckpointProblem> problems = find_checkpoint_problems(staging, manifest, ChecksumCheck::skip);
  T6_CHECK(problems.empty(), "refusing to commit checkpoint of step ", info.step, ": ", problems.front().to_string(),
           problems.size() > 1 ? str(" (and ", problems.size() - 1, " more problems)") : std::string());

  write_manifest(manifest, staging / kManifestName);
  for (const ShardSummary& summary : summaries) fs::remove(shard_index_path(staging / summary.record.file));
  fsync_directory(staging);

  const fs::path final_dir = checkpoints_dir_ / step_dir_name(info.step);
  const fs::path replaced = checkpoints_dir_ / (step_dir_name(info.step) + ".old-" + save_nonce_);
  const bool replacing = fs::exists(final_dir);
  if (replacing) rename_durably(final_dir, replaced);
  rename_durably(staging, final_dir);
  write_file_atomically(checkpoints_dir_ / kLatestName, final_dir.filename().string() + "\n");
  if (replacing) fs::remove_all(replaced);
  prune(checkpoints_dir_, final_dir, keep_last_);
  return final_dir;
}

ResumePoint open_checkpoint(const fs::path& checkpoint_dir, ChecksumCheck checksums) {
  ResumePoint point{checkpoint_dir, read_manifest(checkpoint_dir / kManifestName), {}};
  const std::vector<CheckpointProblem> problems = find_checkpoint_problems(checkpoint_dir, point.manifest, checksums);
  if (!problems.empty()) {
    std::string message = str("checkpoint ", checkpoint_dir.string(), " is damaged: ");
    for (size_t index = 0; index < problems.size(); ++index) message += (index ? "; " : "") + problems[index].to_string();
    fail(message);
  }
  return point;
}

ResumePoint resolve_latest(const fs::path& checkpoints_dir, ChecksumCheck checksums) {
  return open_checkpoint(checkpoints_dir / read_latest_name(checkpoints_dir), checksums);
}

std::optional<ResumePoint> resolve_for_auto_resume(const fs::path& checkpoints_dir, ChecksumCheck checksums) {
  std::vector<std::string> warnings;
  std::string latest_name;
  std::error_code ignored;
  if (fs::symlink_status(checkpoints_dir / kLatestName, ignored).type() != fs::file_type::not_found) {
    try {
      latest_name = read_latest_name(checkpoints_dir);
      return open_checkpoint(checkpoints_dir / latest_name, checksums);
    } catch (const Error& error) {
      warnings.push_back(str("skipping the checkpoint `latest` names: ", error.what()));
    }
  }
  std::vector<fs::path> dirs = list_step_dirs(checkpoints_dir);
  for (auto dir = dirs.rbegin(); dir != dirs.rend(); ++dir) {
    if (dir->filename() == latest_name) continue;  // already tried
    try {
      ResumePoint point = open_checkpoint(*dir, checksums);
      warnings.push_back(str("resuming from ", dir->string(), ", the newest complete checkpoint"));
      point.warnings = std::move(warnings);
      return point;
    } catch (const Error& error) {
      warnings.push_back(str("skipping ", error.what()));
    }
  }
  if (warnings.empty()) return std::nullopt;
  std::string message = str("no complete checkpoint in ", checkpoints_dir.string(), ":");
  for (const std::string& warning : warnings) message += "\n  " + warning;
  fail(message);
}

}  // namespace t6::checkpoint
