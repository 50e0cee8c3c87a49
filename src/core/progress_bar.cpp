#include "core/progress_bar.h"

#include <algorithm>

namespace t6 {

ProgressBar::ProgressBar(std::FILE* out, uint64_t total_bytes, bool enabled)
    : out_(out), total_bytes_(total_bytes), enabled_(enabled), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(uint64_t bytes_done, uint64_t tokens_done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(200) && bytes_done < total_bytes_) return;
  last_draw_ = now;
  drawn_ = true;
  const double seconds = std::max(elapsed_seconds(), 1e-9);
  const double fraction = total_bytes_ ? std::min(1.0, double(bytes_done) / double(total_bytes_)) : 1.0;
  constexpr int kWidth = 30;
  const int filled = int(fraction * kWidth);
  const std::string bar = std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '.');
  const double eta = fraction > 0 ? seconds * (1.0 - fraction) / fraction : 0.0;
  std::fprintf(out_, "\r[%s] %5.1f%% %.1f/%.1f MB  %.1f MB/s  %.2fM tok/s  ETA %d:%02d ", bar.c_str(),
               100.0 * fraction, double(bytes_done) / 1e6, double(total_bytes_) / 1e6,
               double(bytes_done) / 1e6 / seconds, double(tokens_done) / 1e6 / seconds, int(eta) / 60,
               int(eta) % 60);
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) std::fputc('\n', out_);
  drawn_ = false;
}

}  // namespace t6
