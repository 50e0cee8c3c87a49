#include "train/metrics_log.h"

#include <filesystem>
#include <fstream>

#include "core/durable_file.h"
#include "core/error.h"

namespace t6 {
namespace {

// Drops the lines of steps after keep_through_step (all of them for -1) and returns `path`.
const std::string& keep_lines_through(const std::string& path, int64_t keep_through_step) {
  std::string kept;
  if (keep_through_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream existing(path);
    std::string line;
    while (std::getline(existing, line)) {
      const auto record = nlohmann::json::parse(line, nullptr, false);
      // A torn last line (the process died mid-write) is dropped with the later steps.
      if (record.is_discarded() || !record.contains("step")) continue;
      if (record["step"].get<int64_t>() <= keep_through_step) kept += line + "\n";
    }
  }
  // Rewritten atomically so a crash here cannot lose the kept lines.
  write_file_atomically(path, kept);
  return path;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t keep_through_step, const std::filesystem::path& tensorboard_dir)
    : file_(keep_lines_through(path, keep_through_step)) {
  if (!tensorboard_dir.empty()) tensorboard_ = std::make_unique<TensorBoardLog>(tensorboard_dir, keep_through_step);
}

void MetricsLog::write(const nlohmann::json& record) {
  // A sample's text may end inside a UTF-8 character (its last token a partial byte sequence):
  // such bytes are written as U+FFFD rather than refused.
  file_.append(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
  if (!tensorboard_) return;
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& [name, value] : record.items())
    if (name != "step" && value.is_number()) scalars.emplace_back(name, value.get<double>());
  if (scalars.empty()) return;  // a sample record: text only
  tensorboard_->write_scalars(record.at("step").get<int64_t>(), scalars);
}

}  // namespace t6
