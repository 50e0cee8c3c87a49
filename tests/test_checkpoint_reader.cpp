// Resharding on load: slices saved by four simulated ranks in a TP2 x DP2 layout (with ZeRO-1 flat
// optimizer shards) read back whole, at TP4 and TP3 (uneven: 34 rows as 9,9,8,8 and 12,11,11), and
// as ZeRO-1 flat ranges; plus the errors for missing coverage, overlaps and mismatched tensors.
#include <gtest/gtest.h>

#include <functional>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/shard_file.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"

using namespace t6;
using namespace t6::testing;
using namespace t6::checkpoint;

namespace {

// Every element of every test tensor holds a distinct value, exact in float: 10000·id + global index.
float value_at(int tensor_id, int64_t global_index) { return float(tensor_id * 10000 + global_index); }

// The global row-major indices of a region's elements in storage order, computed element by element
// (independently of decompose()).
std::vector<int64_t> global_indices(const TensorRegion& region) {
  std::vector<int64_t> indices;
  const size_t ndim = region.global_shape.size();
  for (int64_t local = region.flat_begin; local < region.flat_end; ++local) {
    Extents coordinate(ndim);
    int64_t rest = local;
    for (size_t axis = ndim; axis-- > 0;) {
      coordinate[axis] = region.box.offset[axis] + rest % region.box.shape[axis];
      rest /= region.box.shape[axis];
    }
    int64_t global = 0;
    for (size_t axis = 0; axis < ndim; ++axis) global = global * region.global_shape[axis] + coordinate[axis];
    indices.push_back(global);
  }
  return indices;
}

HostTensor values_of(int tensor_id, const TensorRegion& region) {
  HostTensor values({region.numel()}, DType::F32);
  std::vector<int64_t> indices = global_indices(region);
  for (size_t i = 0; i < indices.size(); ++i) values.data<float>()[i] = value_at(tensor_id, indices[i]);
  return values;
}

// [begin, end) of part `index` of `extent` split into `parts`, the first extent % parts one longer.
std::pair<int64_t, int64_t> part_of(int64_t extent, int parts, int index) {
  int64_t base = extent / parts, extra = extent % parts;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

struct TestTensor {
  int id;
  std::string name;
  Extents shape;
  int tp_axis;  // -1: replicated
};

const std::vector<TestTensor> kTensors = {
    {1, "param/w_rows", {34, 6}, 0},           // column-parallel: split by output rows
    {2, "param/w_cols", {5, 34}, 1},           // row-parallel: split by input columns
    {3, "adam_m/w_rows", {34, 6}, 0},
    {4, "adam_m/w_cols", {5, 34}, 1},
    {5, "param/transformer.h.0.attn.W_B_q", {6}, -1},  // replicated on every TP rank
};

TensorRegion tp_slice(const TestTensor& tensor, int tp, int tp_rank) {
  if (tensor.tp_axis < 0) return TensorRegion::whole(tensor.shape);
  auto [begin, end] = part_of(tensor.shape[tensor.tp_axis], tp, tp_rank);
  return TensorRegion::split(tensor.shape, tensor.tp_axis, begin, end);
}

// The region a rank of a TP x DP layout holds: its TP slice; with ZeRO-1, optimizer state ("adam_")
// only as its DP part of that slice, flattened.
TensorRegion rank_region(const TestTensor& tensor, int tp, int tp_rank, int dp, int dp_rank, bool zero1) {
  TensorRegion slice = tp_slice(tensor, tp, tp_rank);
  if (!zero1 || tensor.name.rfind("adam_", 0) != 0) return slice;
  auto [begin, end] = part_of(slice.box.numel(), dp, dp_rank);
  return TensorRegion::flat_of_slice(tensor.shape, slice.box.offset, slice.box.shape, begin, end);
}

Manifest manifest_of(const std::vector<ShardSummary>& summaries) {
  Manifest manifest;
  for (const ShardSummary& summary : summaries) {
    manifest.shards.push_back(summary.record);
    for (const TensorInfo& tensor : summary.tensors)
      if (!manifest.find_tensor(tensor.name)) manifest.tensors.push_back(tensor);
  }
  return manifest;
}

// Four writers standing in for the ranks of TP2 x DP2 with ZeRO-1: replicated data (weights, and the
// replicated W_B on every TP rank) is written once; ZeRO-1 shards by every rank.
Manifest save_tp2_dp2(const std::filesystem::path& dir) {
  std::vector<ShardSummary> summaries;
  for (int tp_rank = 0; tp_rank < 2; ++tp_rank) {
    for (int dp_rank = 0; dp_rank < 2; ++dp_rank) {
      ShardFileWriter writer(dir / str("shard_tp", tp_rank, "_dp", dp_rank, ".h5"), "");
      for (const TestTensor& tensor : kTensors) {
        TensorRegion region = rank_region(tensor, 2, tp_rank, 2, dp_rank, true);
        bool sharded_over_dp = region.numel() != region.box.numel();
        bool writes = sharded_over_dp || (dp_rank == 0 && (tensor.tp_axis >= 0 || tp_rank == 0));
        if (writes) writer.write(tensor.name, region, values_of(tensor.id, region));
      }
      summaries.push_back(writer.finish());
    }
  }
  return manifest_of(summaries);
}

void expect_reads_back(CheckpointReader& reader, const TestTensor& tensor, const TensorRegion& region) {
  HostTensor out({region.numel()}, DType::F32);
  reader.read(tensor.name, region, out);
  HostTensor expected = values_of(tensor.id, region);
  for (int64_t i = 0; i < region.numel(); ++i) {
    ASSERT_EQ(out.data<float>()[i], expected.data<float>()[i])
        << tensor.name << " region " << region.to_string() << " element " << i;
  }
}

void expect_layout_reads_back(CheckpointReader& reader, int tp, int dp, bool zero1) {
  for (const TestTensor& tensor : kTensors)
    for (int tp_rank = 0; tp_rank < tp; ++tp_rank)
      for (int dp_rank = 0; dp_rank < dp; ++dp_rank)
        expect_reads_back(reader, tensor, rank_region(tensor, tp, tp_rank, dp, dp_rank, zero1));
}

}  // namespace

TEST(CheckpointReader, SplitsOfTheTestLayoutAreUneven) {
  EXPECT_EQ(part_of(34, 4, 0), (std::pair<int64_t, int64_t>{0, 9}));
  EXPECT_EQ(part_of(34, 4, 3), (std::pair<int64_t, int64_t>{26, 34}));
  EXPECT_EQ(part_of(34, 3, 1), (std::pair<int64_t, int64_t>{12, 23}));
}

TEST(CheckpointReader, Tp2Dp2Zero1LoadsAtEveryOtherLayout) {
  const auto dir = t6::testing::scratch_dir("reader_layouts");
  CheckpointReader reader(dir, save_tp2_dp2(dir));
  ASSERT_EQ(reader.manifest().shards.size(), 4u);
  expect_layout_reads_back(reader, 1, 1, false);  // one rank: whole tensors
  expect_layout_reads_back(reader, 2, 2, true);   // the saved layout itself
  expect_layout_reads_back(reader, 4, 1, false);  // TP4: 34 as 9, 9, 8, 8
  expect_layout_reads_back(reader, 3, 1, false);  // TP3: 34 as 12, 11, 11
  expect_layout_reads_back(reader, 1, 4, true);   // DP4 ZeRO-1: flat ranges of whole tensors
  expect_layout_reads_back(reader, 3, 2, true);   // TP3 x DP2 ZeRO-1: flat ranges of uneven TP slices
  expect_layout_reads_back(reader, 4, 3, false);
}

TEST(CheckpointReader, ReadsASubBoxAcrossFiles) {
  const auto dir = t6::testing::scratch_dir("reader_subbox");
  CheckpointReader reader(dir, save_tp2_dp2(dir));
  // Rows 15..19 of adam_m/w_rows straddle both TP slices and both ZeRO-1 halves of each.
  expect_reads_back(reader, kTensors[2], TensorRegion::slice({34, 6}, {15, 2}, {5, 3}));
  expect_reads_back(reader, kTensors[3], TensorRegion::slice({5, 34}, {1, 10}, {3, 20}));
}

TEST(CheckpointReader, MissingCoverageNamesTensorAndRegion) {
  const auto dir = t6::testing::scratch_dir("reader_missing");
  const TestTensor& tensor = kTensors[0];
  ShardFileWriter first(dir / "shard_tp0_dp0.h5", ""), second(dir / "shard_tp1_dp0.h5", "");
  TensorRegion top = TensorRegion::split(tensor.shape, 0, 0, 17), bottom = TensorRegion::split(tensor.shape, 0, 25, 34);
  first.write(tensor.name, top, values_of(tensor.id, top));
  second.write(tensor.name, bottom, values_of(tensor.id, bottom));
  CheckpointReader reader(dir, manifest_of({first.finish(), second.finish()}));

  expect_reads_back(reader, tensor, TensorRegion::split(tensor.shape, 0, 0, 10));
  expect_reads_back(reader, tensor, TensorRegion::split(tensor.shape, 0, 26, 34));
  HostTensor whole({204}, DType::F32);
  std::string message = error_of([&] { reader.read(tensor.name, TensorRegion::whole(tensor.shape), whole); });
  EXPECT_NE(message.find("'param/w_rows' region offset [0, 0] shape [34, 6]: 48 of 204 elements are in no shard"),
            std::string::npos)
      << message;
  HostTensor zero_part({10}, DType::F32);
  message = error_of([&] { reader.read(tensor.name, TensorRegion::flat(tensor.shape, 100, 110), zero_part); });
  EXPECT_NE(message.find("elements [100, 110): 8 of 10 elements are in no shard"), std::string::npos) << message;
}

TEST(CheckpointReader, MismatchedTensorsAreErrors) {
  const auto dir = t6::testing::scratch_dir("reader_mismatch");
  CheckpointReader reader(dir, save_tp2_dp2(dir));
  HostTensor out({204}, DType::F32);
  std::string message = error_of([&] { reader.read("param/w_rows", TensorRegion::whole({34, 7}), out); });
  EXPECT_NE(message.find("'param/w_rows' has shape [34, 6] in checkpoint"), std::string::npos) << message;
  HostTensor bf16_out({204}, DType::BF16);
  message = error_of([&] { reader.read("param/w_rows", TensorRegion::whole({34, 6}), bf16_out); });
  EXPECT_NE(message.find("is F32 in checkpoint"), std::string::npos) << message;
  message = error_of([&] { reader.read("param/absent", TensorRegion::whole({34, 6}), out); });
  EXPECT_NE(message.find("'param/absent' is not in checkpoint"), std::string::npos) << message;
  HostTensor too_small({10}, DType::F32);
  EXPECT_THROW(reader.read("param/w_rows", TensorRegion::whole({34, 6}), too_small), Error);
}

TEST(CheckpointReader, OverlappingSlicesAreRejected) {
  const auto dir = t6::testing::scratch_dir("reader_overlap");
  const TestTensor& tensor = kTensors[0];
  ShardFileWriter first(dir / "a.h5", ""), second(dir / "b.h5", "");
  TensorRegion top = TensorRegion::split(tensor.shape, 0, 0, 18), bottom = TensorRegion::split(tensor.shape, 0, 17, 34);
  first.write(tensor.name, top, values_of(tensor.id, top));
  second.write(tensor.name, bottom, values_of(tensor.id, bottom));
  Manifest manifest = manifest_of({first.finish(), second.finish()});
  std::string message = error_of([&] { CheckpointReader reader(dir, manifest); });
  EXPECT_NE(message.find("'param/w_rows': slices offset [0, 0] shape [18, 6] and offset [17, 0] shape [17, 6] overlap"),
            std::string::npos)
      << message;
}
