#include "checkpoint/checkpoint_store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "checkpoint/save_faults.h"
#include "checkpoint/shard_file.h"
#include "core/durable_file.h"
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

constexpr const char* kSetAsideName = "set_aside";

// What a leftover directory name of the save protocol is: "step_N<marker><nonce>".
constexpr const char* kStagingMarker = ".tmp-";   // a save in progress, never committed
constexpr const char* kReplacedMarker = ".old-";  // a committed step set aside while a new save of it goes in
constexpr const char* kPruneMarker = ".prune-";   // a pruned step being removed

// The step directory name a leftover belongs to, when `name` is one with `marker`.
std::optional<std::string> leftover_of(const std::string& name, const char* marker) {
  const size_t at = name.find(marker);
  if (at == std::string::npos || !parse_step_dir_name(name.substr(0, at))) return std::nullopt;
  return name.substr(0, at);
}

// Bytes outside printable ASCII as \xNN, at most 80 characters: a garbage `latest` in a message.
std::string escaped(const std::string& text) {
  std::string shown;
  for (unsigned char byte : text) {
    if (shown.size() >= 80) return shown + "...";
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      shown += char(byte);
    } else {
      char code[5];
      std::snprintf(code, sizeof code, "\\x%02x", byte);
      shown += code;
    }
  }
  return shown;
}

// The shard summaries in a staging directory; every shard file must have its index.
std::vector<ShardSummary> read_shard_summaries(const fs::path& staging, const std::string& save_id) {
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
  for (const ShardSummary& summary : summaries) {
    T6_CHECK(summary.save_id == save_id, (staging / summary.record.file).string(), ": written by save '",
             summary.save_id, "', not by this save '", save_id, "'");
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
    T6_CHECK(!fs::is_directory(latest, error), latest.string(), ": is a directory, not a file naming a step directory");
    std::ifstream in(latest, std::ios::binary);
    T6_CHECK(in, latest.string(), ": missing (no checkpoint was ever completed here)");
    name.resize(128);
    in.read(name.data(), std::streamsize(name.size()));
    name.resize(size_t(in.gcount()));
    if (!name.empty() && name.back() == '\n') name.pop_back();
  }
  T6_CHECK(parse_step_dir_name(name), latest.string(), ": holds '", escaped(name), "', not a step directory name");
  return name;
}

// Renames before removing, so a crash mid-removal never leaves half a step directory behind.
void remove_step_dir(const fs::path& dir, const std::string& nonce) {
  fs::path doomed = dir;
  doomed += kPruneMarker + nonce;
  rename_durably(dir, doomed);
  save_crash_point("pruning");
  fs::remove_all(doomed);
}

void prune(const fs::path& checkpoints_dir, const fs::path& just_written, int keep_last, const std::string& nonce) {
  if (keep_last <= 0) return;
  std::vector<fs::path> others;
  for (const fs::path& dir : list_step_dirs(checkpoints_dir))
    if (dir.filename() != just_written.filename()) others.push_back(dir);
  // list_step_dirs is oldest first; the newest keep_last − 1 others stay beside the one just written.
  const size_t keep_others = size_t(keep_last - 1);
  for (size_t index = 0; index + keep_others < others.size(); ++index) remove_step_dir(others[index], nonce);
}

std::string format_problems(const std::vector<CheckpointProblem>& problems) {
  std::string message;
  for (size_t index = 0; index < problems.size(); ++index) message += (index ? "; " : "") + problems[index].to_string();
  return message;
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

std::string CheckpointStore::save_id(int64_t step) const { return str(save_nonce_, "-", step_dir_name(step)); }

fs::path CheckpointStore::begin_save(int64_t step) const {
  fs::create_directories(checkpoints_dir_);
  recover_interrupted_saves(checkpoints_dir_);
  const fs::path staging = staging_dir(step);
  fs::create_directory(staging);
  fsync_directory(checkpoints_dir_);
  save_crash_point("begin");
  return staging;
}

void CheckpointStore::abort_save(int64_t step) const {
  std::error_code ignored;
  fs::remove_all(staging_dir(step), ignored);
}

fs::path CheckpointStore::commit_save(const SaveInfo& info) const {
  const fs::path staging = staging_dir(info.step);
  T6_CHECK(fs::is_directory(staging), staging.string(), ": no save in progress (begin_save was not called)");

  const std::vector<ShardSummary> summaries = read_shard_summaries(staging, save_id(info.step));
  Manifest manifest;
  manifest.save_id = save_id(info.step);
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

  T6_CHECK(!disk_full_injected(), "cannot write ", (staging / kManifestName).string(), ": ", std::strerror(ENOSPC));
  write_manifest(manifest, staging / kManifestName);
  save_crash_point("manifest_written");
  for (const ShardSummary& summary : summaries) fs::remove(shard_index_path(staging / summary.record.file));
  fsync_directory(staging);
  save_crash_point("indexes_removed");

  // The rename of the staging directory to step_N commits the save. An older save of the same step
  // is set aside first (rename cannot replace a directory); a crash before the commit has it put
  // back by recover_interrupted_saves.
  const fs::path final_dir = checkpoints_dir_ / step_dir_name(info.step);
  const fs::path replaced = checkpoints_dir_ / (step_dir_name(info.step) + kReplacedMarker + save_nonce_);
  const bool replacing = fs::exists(final_dir);
  if (replacing) {
    rename_durably(final_dir, replaced);
    save_crash_point("old_set_aside");
  }
  rename_durably(staging, final_dir);
  save_crash_point("renamed");
  write_file_atomically(checkpoints_dir_ / kLatestName, final_dir.filename().string() + "\n");
  save_crash_point("latest_written");
  if (replacing) fs::remove_all(replaced);
  prune(checkpoints_dir_, final_dir, keep_last_, save_nonce_);
  return final_dir;
}

fs::path write_checkpoint_offline(const fs::path& checkpoints_dir, const SaveInfo& info,
                                  const std::function<void(const CheckpointStore& store)>& write_shards) {
  std::error_code error;
  const bool existed = fs::exists(checkpoints_dir, error);
  T6_CHECK(!existed || fs::is_directory(checkpoints_dir, error), checkpoints_dir.string(),
           ": exists and is not a directory; pick another destination");
  const fs::path final_dir = checkpoints_dir / step_dir_name(info.step);
  T6_CHECK(!fs::exists(final_dir, error), final_dir.string(), " exists already; pick another destination");
  const std::vector<fs::path> held = existed ? list_step_dirs(checkpoints_dir) : std::vector<fs::path>{};
  T6_CHECK(held.empty() || *parse_step_dir_name(held.back().filename().string()) < info.step, checkpoints_dir.string(),
           " holds ", held.empty() ? "" : held.back().filename().string(), ", newer than the step ", info.step,
           " written here, so its `latest` would move back; pick another destination");
  fs::create_directories(checkpoints_dir, error);
  T6_CHECK(!error, checkpoints_dir.string(), ": cannot create the checkpoints directory (", error.message(), ")");
  const CheckpointStore store(checkpoints_dir, 0, make_save_nonce());
  try {
    store.begin_save(info.step);
    write_shards(store);
    return store.commit_save(info);
  } catch (...) {
    store.abort_save(info.step);
    if (!existed) fs::remove(checkpoints_dir, error);  // only while empty
    throw;
  }
}

void recover_interrupted_saves(const fs::path& checkpoints_dir) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_dir, error)) {
    const std::string name = entry.path().filename().string();
    if (auto step_name = leftover_of(name, kReplacedMarker)) {
      // Its replacement was committed (then this copy is stale) or not (then this is the checkpoint).
      if (fs::exists(checkpoints_dir / *step_name)) {
        fs::remove_all(entry.path());
      } else {
        rename_durably(entry.path(), checkpoints_dir / *step_name);
      }
    } else if (leftover_of(name, kStagingMarker) || leftover_of(name, kPruneMarker)) {
      fs::remove_all(entry.path());
    }
  }
}

std::vector<fs::path> set_aside_newer_than(const fs::path& checkpoints_dir, int64_t step, const std::string& nonce) {
  std::vector<fs::path> moved;
  for (const fs::path& dir : list_step_dirs(checkpoints_dir)) {
    if (*parse_step_dir_name(dir.filename().string()) <= step) continue;
    fs::create_directories(checkpoints_dir / kSetAsideName);
    const fs::path destination = checkpoints_dir / kSetAsideName / str(dir.filename().string(), "-", nonce);
    rename_durably(dir, destination);
    moved.push_back(destination);
  }
  return moved;
}

ResumePoint open_checkpoint(const fs::path& checkpoint_dir, ChecksumCheck checksums, const CheckpointCheck& check,
                            const KnownDigests* known) {
  ResumePoint point{checkpoint_dir, read_manifest(checkpoint_dir / kManifestName), {}};
  const std::vector<CheckpointProblem> problems = find_checkpoint_problems(checkpoint_dir, point.manifest, checksums, known);
  T6_CHECK(problems.empty(), "checkpoint ", checkpoint_dir.string(), " is damaged: ", format_problems(problems));
  if (check) {
    try {
      check(point);
    } catch (const Error& error) {
      fail(str("checkpoint ", checkpoint_dir.string(), " is damaged: ", error.what()));
    }
  }
  return point;
}

ResumePoint resolve_latest(const fs::path& checkpoints_dir, ChecksumCheck checksums, const CheckpointCheck& check,
                           const KnownDigests* known) {
  const std::string latest_name = read_latest_name(checkpoints_dir);
  // A crash between committing a step directory and updating `latest` leaves a newer one behind.
  const std::vector<fs::path> dirs = list_step_dirs(checkpoints_dir);
  if (!dirs.empty() && *parse_step_dir_name(dirs.back().filename().string()) > *parse_step_dir_name(latest_name)) {
    ResumePoint point = open_checkpoint(dirs.back(), checksums, check, known);
    point.warnings.push_back(str("resuming from ", dirs.back().string(), ", newer than ", latest_name,
                                 " that `latest` names (a save stopped before updating `latest`)"));
    return point;
  }
  return open_checkpoint(checkpoints_dir / latest_name, checksums, check, known);
}

std::optional<ResumePoint> resolve_for_auto_resume(const fs::path& checkpoints_dir, ChecksumCheck checksums,
                                                   const CheckpointCheck& check, const KnownDigests* known) {
  std::vector<std::string> warnings;
  std::optional<int64_t> latest_step;
  std::error_code ignored;
  if (fs::symlink_status(checkpoints_dir / kLatestName, ignored).type() != fs::file_type::not_found) {
    try {
      latest_step = parse_step_dir_name(read_latest_name(checkpoints_dir));
    } catch (const Error& error) {
      warnings.push_back(str("ignoring `latest`: ", error.what()));
    }
  }
  const std::vector<fs::path> dirs = list_step_dirs(checkpoints_dir);
  for (auto dir = dirs.rbegin(); dir != dirs.rend(); ++dir) {
    try {
      ResumePoint point = open_checkpoint(*dir, checksums, check, known);
      if (!warnings.empty() || (latest_step && point.manifest.step != *latest_step))
        warnings.push_back(str("resuming from ", dir->string(), ", the newest checkpoint that verifies"));
      point.warnings = std::move(warnings);
      return point;
    } catch (const Error& error) {
      warnings.push_back(str("skipping ", error.what()));
    }
  }
  if (warnings.empty() && !latest_step) return std::nullopt;
  std::string message = str("no complete checkpoint in ", checkpoints_dir.string(), ":");
  if (warnings.empty()) warnings.push_back("`latest` names a step directory that is gone");
  for (const std::string& warning : warnings) message += "\n  " + warning;
  fail(message);
}

}  // namespace t6::checkpoint
