// The parameter table: every weight's reference name (docs/MODEL.md 2.1), global shape, how it is split
// over tensor-parallel ranks, and where this rank's slice lives in the flat parameter buffer.
// Init, the optimizer, gradient reduction, grad-norm, checkpoints, reshard and export read this
// table; no other code knows how a tensor is split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace t6 {

// [begin, end) of `count` items given to `part` of `parts`, the first count % parts parts taking one
// more (34 heads on 4 ranks: 9, 9, 8, 8).
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range balanced_range(int64_t count, int64_t parts, int64_t part);

// How a weight is laid out over the TP group. A split weight's `axis` is cut into `units` blocks of
// `unit_size` consecutive indices (a head's rows, a hidden unit), dealt out by balanced_range.
struct ShardRule {
  enum class Kind { Replicated, Split };
  Kind kind = Kind::Replicated;
  int axis = 0;
  int64_t unit_size = 1;
  int64_t units = 1;
  // A replicated weight used only by this rank's heads (W_B_*, or MQA's shared c_k/c_v): each rank's
  // gradient is a partial sum and must be all-reduced over TP before the update.
  bool partial_gradient = false;

  static ShardRule replicated(bool partial_gradient = false) { return {Kind::Replicated, 0, 1, 1, partial_gradient}; }
  static ShardRule split(int axis, int64_t unit_size, int64_t units) { return {Kind::Split, axis, unit_size, units, false}; }
  std::string describe() const;  // "replicated", "split dim 0 by 34 heads of 6 rows", ...
};

enum class InitKind { Uniform, Zero, One };

struct ParamSpec {
  std::string name;
  Shape global_shape;
  ShardRule rule;
  InitKind init = InitKind::Uniform;
  float init_bound = 0.0f;  // uniform in [-bound, bound)
};

struct LocalParam {
  ParamSpec spec;
  Shape local_shape;
  int64_t axis_offset = 0;  // where this rank's slice starts along spec.rule.axis (0 if replicated)
  int64_t flat_offset = 0;  // element offset in the rank's flat parameter buffer
  int64_t numel() const { return local_shape.numel(); }
};

// Which heads (and KV heads) a TP rank owns; attention layers read this.
struct HeadLayout {
  int64_t first_head = 0, local_heads = 0;
  int64_t first_kv_head = 0, local_kv_heads = 0;  // kv heads stored on this rank
  bool kv_replicated = false;                     // MQA/GQA with tp > kv heads
};
HeadLayout head_layout(const ModelConfig& config, int tp_rank, int tp_size);

// Every parameter in the reference's order. The layout matters only for GQA, whose c_k/c_v become
// replicated once there are more TP ranks than KV heads.
std::vector<ParamSpec> model_param_specs(const ModelConfig& config, int tp_size = 1);

class ParamTable {
 public:
  // Throws if the model cannot be split over tp_size ranks (more ranks than heads, ...).
  ParamTable(const ModelConfig& config, int tp_rank, int tp_size);

  const std::vector<LocalParam>& params() const { return params_; }
  const LocalParam& find(const std::string& name) const;
  // The index in params() of block `layer`'s first parameter: the table lists the embedding, then
  // each block's parameters, so the backward's gradients are final from here on after that block.
  int64_t first_param_of_layer(int64_t layer) const;
  int64_t local_numel() const { return local_numel_; }
  int tp_rank() const { return tp_rank_; }
  int tp_size() const { return tp_size_; }
  const HeadLayout& heads() const { return heads_; }
  // The slice [begin, end) of the split axis this rank owns for a parameter.
  Range local_range(const ParamSpec& spec) const;

 private:
  std::vector<LocalParam> params_;
  int64_t local_numel_ = 0;
  int tp_rank_, tp_size_;
  HeadLayout heads_;
};

}  // namespace t6
