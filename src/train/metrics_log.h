// RUN_DIR/metrics.jsonl: one JSON object per line, per training step and per evaluation. On resume
// from step N the lines of later steps (written by the run that died) are dropped first, so every
// step appears once. Written by world rank 0 only.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace t6 {

class MetricsLog {
 public:
  // Opens for appending, after dropping lines whose "step" is greater than keep_through_step
  // (pass -1 to start a fresh file).
  MetricsLog(const std::string& path, int64_t keep_through_step);
  void write(const nlohmann::json& record);  // one line, flushed

 private:
  std::string path_;
  std::ofstream file_;
};

}  // namespace t6
