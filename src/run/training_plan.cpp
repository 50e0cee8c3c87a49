#include "run/training_plan.h"

#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "model/language_model.h"
#include "model/param_table.h"
#include "parallel/cuda_training_status.h"
#include "parallel/process_grid.h"
#include "train/batch_split.h"
#include "run/memory_plan.h"

namespace t6 {

namespace {

constexpr int64_t kFloatBytes = 4;

struct RankLayout {
  int64_t tp, dp;
  bool zero1;  // in effect: asked for and more than one DP rank
};

RankLayout layout_of(const RunConfig& config, int64_t world) {
  check_tp_fits_world(config.parallel.tp, world);
  const int64_t dp = world / config.parallel.tp;
  return {config.parallel.tp, dp, config.parallel.zero1 && dp > 1};
}

// TP rank tp_rank's parameter table, as the trainer's weights lay it out (no buffers).
ModelWeights planned_weights(const RunConfig& config, const RankLayout& layout, int tp_rank) {
  return ModelWeights::shapes_only(config.model, tp_rank, int(layout.tp));
}

std::string gib(int64_t bytes) { return str(std::fixed, std::setprecision(2), double(bytes) / double(1ull << 30), " GiB"); }

std::string millions(int64_t count) { return str(std::fixed, std::setprecision(2), double(count) / 1e6, "M"); }

// "61" or "16, 15, 15, 15": a count of each TP rank, in rank order.
template <class Count>
std::string per_tp_rank(int64_t tp, Count count) {
  std::string text;
  for (int64_t rank = 0; rank < tp; ++rank) text += (rank ? ", " : "") + std::to_string(count(int(rank)));
  return text;
}

}  // namespace

RankMemory planned_cuda_memory(const RunConfig& config, int64_t world) {
  layout_of(config, world);  // the trainer's checks of the layout, with its messages
  return plan_rank_memory(config, int(world), Device::CUDA);
}

StepCommunication planned_communication(const RunConfig& config, int64_t world) {
  const RankLayout layout = layout_of(config, world);
  const ModelWeights weights = planned_weights(config, layout, 0);
  const BatchShare share = batch_share(config.train, 0, layout.dp);
  StepCommunication step;
  if (layout.tp > 1) {
    // Per micro-batch (language_model.cpp): the embedding lookup and each block's two branch outputs
    // forward, the head's input gradient and each block's two input gradients backward (N × d each),
    // and the vocab-parallel cross-entropy's three row statistics; per step the partial gradients of
    // the replicated weights (TPA's W_B_*, MLA's latent maps, MQA's K/V) and the gradient norm.
    const int64_t rows = share.micro_batch * config.train.seq_len, L = config.model.n_layer;
    const int64_t per_micro_step = ((2 + 4 * L) * rows * config.model.n_embd + 3 * rows) * kFloatBytes;
    int64_t partial_gradients = 0;
    for (const LocalParam& entry : weights.table().params())
      if (entry.spec.rule.partial_gradient) partial_gradients += entry.numel();
    step.tp_bytes = share.micro_steps * per_micro_step + partial_gradients * kFloatBytes + 8;
  }
  if (layout.dp > 1) {
    // The DP mean of the loss, the gradients (all-reduce, or ZeRO-1's reduce-scatter then the
    // all-gather of the updated weights: the same bytes on a ring) and, with ZeRO-1, the norm.
    step.dp_bytes = 8 + int64_t(plan_rank_memory(config, int(world)).gradients) + (layout.zero1 ? 8 : 0);
  }
  return step;
}

std::string training_plan_report(const RunConfig& config, int64_t world) {
  T6_CHECK(world >= 1, "--world must be at least 1, got ", world);
  const RankLayout layout = layout_of(config, world);
  const ModelConfig& m = config.model;
  const TrainConfig& t = config.train;
  std::ostringstream out;
  const auto line = [&](const std::string& label, const std::string& text) {
    out << "  " << std::left << std::setw(12) << label << text << "\n";
  };
  out << "t6_pretrain --plan: " << m.describe() << " | " << millions(m.parameter_count()) << " parameters (" << m.parameter_count()
      << "); a dry run: no corpus read, no rank started, nothing allocated\n";

  // Every check first (tp against the world and the heads, the batch split), as the trainer does.
  const ModelWeights rank0 = planned_weights(config, layout, 0);
  std::vector<HeadLayout> heads;
  for (int rank = 0; rank < layout.tp; ++rank) heads.push_back(head_layout(m, rank, int(layout.tp)));
  const std::string batch = describe_batch_split(t, layout.dp);

  line("layout", str("world ", world, " = TP ", layout.tp, " × DP ", layout.dp, layout.zero1 ? " (ZeRO-1)" : ""));
  const int64_t embedding = m.vocab_size * m.n_embd;
  line("parameters", str(millions(embedding), " embedding = LM head (tied), ",
                         millions((m.parameter_count() - embedding) / m.n_layer), " per block × ", m.n_layer,
                         "; TP rank 0 holds ", millions(rank0.table().local_numel())));
  if (layout.tp > 1)
    line("split", str("attention heads per TP rank ", per_tp_rank(layout.tp, [&](int r) { return heads[r].local_heads; }),
                      "; MLP hidden units ", per_tp_rank(layout.tp, [&](int r) {
                        return ParamTable(m, r, int(layout.tp)).find("transformer.h.0.mlp.c_fc1.weight").local_shape[0];
                      }),
                      heads[0].kv_replicated ? "; K/V replicated (more TP ranks than KV heads)" : ""));
  line("batch", batch);
  const double flops_per_token = m.training_flops_per_token(t.seq_len);
  const double tokens_per_step = double(t.global_batch_size * t.seq_len);
  line("compute", str(std::setprecision(4), flops_per_token / 1e9, " GFLOP per token (6N + 12 L H D T), ",
                      flops_per_token * tokens_per_step / double(world) / 1e12, " TFLOP per rank per step"));
  const StepCommunication comm = planned_communication(config, world);
  const auto ring = [](int64_t bytes, int64_t ranks) { return double(bytes) * 2.0 * double(ranks - 1) / double(ranks); };
  line("comm/step", str("TP ", layout.tp > 1 ? str(gib(comm.tp_bytes), " all-reduced (ring: ",
                                                   gib(int64_t(ring(comm.tp_bytes, layout.tp))), " sent per rank)")
                                             : std::string("none"),
                        "; DP ", layout.dp > 1 ? str(gib(comm.dp_bytes), layout.zero1 ? " reduce-scattered + gathered" : " all-reduced",
                                                     " (ring: ", gib(int64_t(ring(comm.dp_bytes, layout.dp))), " sent per rank)")
                                               : std::string("none")));
  const RankMemory cpu = plan_rank_memory(config, int(world));
  line("memory CPU", cpu.describe() + " per rank (the largest; the start-up table's memory line and check)");
  const RankMemory cuda = planned_cuda_memory(config, world);
  line("memory CUDA", cuda.describe() + " per rank (the device arenas: fp32 master weights and their bf16 copy, bf16 matmul "
                                        "inputs among the activations; the start-up table's device line)");
  const double usable = double(kPlanGpuBytes - kPlanGpuReservedBytes);
  line("GPU", str(kPlanGpuName, ": ", gib(kPlanGpuBytes), ", ", gib(usable), " after the CUDA context and libraries; this layout ",
                  cuda.total() <= usable ? "fits" : "does NOT fit"));
  // The other layouts of this world, so that one that does not fit shows what would.
  std::string others;
  for (int64_t tp = 1; tp <= std::min<int64_t>(world, 8); tp *= 2) {
    if (world % tp != 0 || tp > m.n_head) continue;
    for (const bool zero1 : {false, true}) {
      if (zero1 && world / tp == 1) continue;
      RunConfig variant = config;
      variant.parallel.tp = tp;
      variant.parallel.zero1 = zero1;
      double bytes = 0;
      try {
        bytes = planned_cuda_memory(variant, world).total();
      } catch (const Error&) {
        continue;  // a layout whose batch does not split
      }
      others += str("\n      TP ", tp, zero1 ? " ZeRO-1" : "", ": ", gib(int64_t(bytes)), bytes <= usable ? " fits" : " does NOT fit");
    }
  }
  line("GPU layouts", str("CUDA memory per rank of this world's layouts on the ", kPlanGpuName, ":", others));
  line("backend", cuda_training_status());
  return out.str();
}

}  // namespace t6
