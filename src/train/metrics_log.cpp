#include "train/metrics_log.h"

#include <filesystem>
#include <sstream>

#include "core/durable_file.h"
#include "core/error.h"

namespace t6 {

MetricsLog::MetricsLog(const std::string& path, int64_t keep_through_step, const std::filesystem::path& tensorboard_dir)
    : path_(path) {
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
  file_.open(path, std::ios::app);
  T6_CHECK(file_, path, ": cannot open the metrics file for appending");
  if (!tensorboard_dir.empty()) tensorboard_ = std::make_unique<TensorBoardLog>(tensorboard_dir, keep_through_step);
}

void MetricsLog::write(const nlohmann::json& record) {
  file_ << record.dump() << '\n';
  file_.flush();
  T6_CHECK(file_, path_, ": write failed (disk full?)");
  if (!tensorboard_) return;
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& [name, value] : record.items())
    if (name != "step" && value.is_number()) scalars.emplace_back(name, value.get<double>());
  tensorboard_->write_scalars(record.at("step").get<int64_t>(), scalars);
}

}  // namespace t6
