// What the attention steps of every cache kind share (attention_step.cpp, mla_step.cpp): the
// weights' names, writing new rows into the cache, and spreading rows and heads over threads.
#pragma once
#include <omp.h>

#include <algorithm>
#include <span>
#include <string>

#include "infer/attention_step.h"

namespace t6::infer {

// "transformer.h.<layer>.attn.<name>.weight"
std::string attn_weight(int64_t layer, const std::string& name);

// Copies each row of every field's projection (N, field numel) to its slot and position.
void write_cache_rows(const StepContext& context, std::span<const Tensor> projections);

// Runs attend(row, heads, scratch) over every row and a split of the heads, so that a batch of one
// still uses every thread; scratch is the running thread's row of context.attention_scratch, whose
// row count is the team's size. Small problems stay on one thread: waking a team costs more than they do.
template <class Attend>
void for_rows_and_heads(const StepContext& context, int64_t heads, Attend attend) {
  const int64_t rows = context.rows.size(), threads = context.attention_scratch.size(0);
  int64_t cached = 0;  // cache positions read, over all rows
  for (int64_t position : context.rows.position) cached += position + 1;
  const bool parallel = cached * heads >= (int64_t(1) << 16);
  const int64_t groups = std::clamp<int64_t>((threads + rows - 1) / rows, 1, heads);
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(int(threads)) if (parallel)
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t thread = omp_get_thread_num();
      attend(row, HeadRange{heads * group / groups, heads * (group + 1) / groups},
             context.attention_scratch.rows(thread, thread + 1));
    }
}

}  // namespace t6::infer
