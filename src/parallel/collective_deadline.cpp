#include "parallel/collective_deadline.h"

namespace t6 {

namespace {
struct DeadlineSettings {
  double timeout_seconds = 600;
  std::string label = "start-up";
};
DeadlineSettings& settings() {
  static DeadlineSettings value;
  return value;
}
}  // namespace

void set_collective_timeout(double seconds) { settings().timeout_seconds = seconds; }
double collective_timeout() { return settings().timeout_seconds; }
void set_progress_label(const std::string& label) { settings().label = label; }
const std::string& progress_label() { return settings().label; }

}  // namespace t6
