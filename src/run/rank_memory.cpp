#include "run/rank_memory.h"

#include <iomanip>

#include "core/error.h"

namespace t6 {

namespace {
std::string amount(int64_t bytes) {
  const double mib = double(bytes) / double(1 << 20);
  if (mib >= 1024) return str(std::fixed, std::setprecision(2), mib / 1024, " GiB");
  return str(std::fixed, std::setprecision(2), mib, " MiB");
}
}  // namespace

std::string format_rank_memory(const RankMemory& memory) {
  return str("weights ", amount(memory.weights), ", gradients ", amount(memory.gradients), ", AdamW ",
             amount(memory.optimizer), ", activations ", amount(memory.activations), ", workspace ",
             amount(memory.workspace), " = ", amount(memory.total()), " (", memory.total(), " bytes) per rank");
}

}  // namespace t6
