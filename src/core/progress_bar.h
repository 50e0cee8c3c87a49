// A one-line progress bar for long offline work: bytes done of total, MB/s, tokens/s and ETA,
// redrawn in place at most a few times a second. Only on a terminal; elsewhere it stays silent and
// the tool prints a plain summary at the end.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace t6 {

class ProgressBar {
 public:
  // `enabled` is usually isatty(fileno(out)).
  ProgressBar(std::FILE* out, uint64_t total_bytes, bool enabled);
  void update(uint64_t bytes_done, uint64_t tokens_done);
  void finish();  // ends the line so later output starts clean
  double elapsed_seconds() const;

 private:
  std::FILE* out_;
  uint64_t total_bytes_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace t6
