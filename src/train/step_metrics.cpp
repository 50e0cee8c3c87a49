#include "train/step_metrics.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/process_memory.h"

namespace t6 {

StepCost reduce_step_cost(Communicator& world, const StepTimes& local, int64_t tokens, double flops_per_token,
                          double peak_flops) {
  double values[6] = {local.data, local.forward_backward, local.communication, local.optimizer, local.total,
                      double(peak_host_rss_bytes()) / double(1 << 20)};
  world.all_reduce(Tensor(values, {6}, DType::F64), ReduceOp::Max);
  StepCost cost;
  // Collective time overlaps a slower peer's compute (a fast rank waits inside the collective), so
  // the phases' maxima would count that wait twice: communication is what the slowest compute
  // phases leave of the step, the communication that was not hidden.
  const double compute = values[0] + values[1] + values[3];
  cost.times = {values[0], values[1], std::max(0.0, values[4] - compute), values[3], values[4]};
  cost.peak_rss_mib = values[5];
  cost.tokens_per_s = double(tokens) / cost.times.total;
  cost.mfu = peak_flops > 0 ? flops_per_token * cost.tokens_per_s / peak_flops : 0;
  return cost;
}

void add_step_cost(nlohmann::json& record, const StepCost& cost) {
  record["tokens_per_s"] = cost.tokens_per_s;
  record["mfu"] = cost.mfu;
  if (cost.peak_measured_under_load) record["mfu_peak_under_load"] = true;
  record["step_s"] = cost.times.total;
  record["data_s"] = cost.times.data;
  record["fwd_bwd_s"] = cost.times.forward_backward;
  record["comm_s"] = cost.times.communication;
  record["optimizer_s"] = cost.times.optimizer;
  record["peak_rss_mib"] = cost.peak_rss_mib;
}

std::string format_step_cost(const StepCost& cost) {
  const auto ms = [](double seconds) { return int64_t(seconds * 1000 + 0.5); };
  char mfu[16];
  std::snprintf(mfu, sizeof mfu, "%.1f%%", cost.mfu * 100);
  return str(int64_t(cost.tokens_per_s), " tok/s | MFU ", mfu,
             cost.peak_measured_under_load ? " (peak measured under load: too high)" : "", " | ", ms(cost.times.total), " ms (data ", ms(cost.times.data),
             ", fwd+bwd ", ms(cost.times.forward_backward), ", comm ", ms(cost.times.communication), ", optimizer ",
             ms(cost.times.optimizer), ") | peak RSS ", int64_t(cost.peak_rss_mib), " MiB");
}

}  // namespace t6
