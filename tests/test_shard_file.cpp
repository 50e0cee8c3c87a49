// Checkpoint shard files: region geometry (boxes and ZeRO-1 flat ranges), one file's write/read
// round trip with its attributes and index, and whole-file checksums.
#include <gtest/gtest.h>

#include <fstream>

#include "checkpoint/file_checksum.h"
#include "checkpoint/shard_file.h"
#include "checkpoint/tensor_region.h"
#include "common/test_paths.h"
#include "core/bf16.h"

using namespace t6;
using namespace t6::checkpoint;

TEST(TensorRegion, FlatRangeOfMatrixIsPartialRowWholeRowsPartialRow) {
  // Elements [5, 23) of a 4x6 matrix: row 0 cols 5..6, rows 1..2 whole, row 3 cols 0..5.
  std::vector<StoredBox> boxes = decompose(TensorRegion::flat({4, 6}, 5, 23));
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].box, (Box{{0, 5}, {1, 1}}));
  EXPECT_EQ(boxes[0].storage_offset, 0);
  EXPECT_EQ(boxes[1].box, (Box{{1, 0}, {2, 6}}));
  EXPECT_EQ(boxes[1].storage_offset, 1);
  EXPECT_EQ(boxes[2].box, (Box{{3, 0}, {1, 5}}));
  EXPECT_EQ(boxes[2].storage_offset, 13);
}

TEST(TensorRegion, FlatRangeOfSliceIsShiftedToGlobalCoordinates) {
  // A TP column slice (cols 4..7 of a 3x8 matrix), elements [2, 9) of it flattened.
  std::vector<StoredBox> boxes = decompose(TensorRegion::flat_of_slice({3, 8}, {0, 4}, {3, 4}, 2, 9));
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].box, (Box{{0, 6}, {1, 2}}));
  EXPECT_EQ(boxes[1].box, (Box{{1, 4}, {1, 4}}));
  EXPECT_EQ(boxes[1].storage_offset, 2);
  EXPECT_EQ(boxes[2].box, (Box{{2, 4}, {1, 1}}));
  EXPECT_EQ(boxes[2].storage_offset, 6);
}

TEST(TensorRegion, ThreeAxisRangeAndWholeBox) {
  std::vector<StoredBox> boxes = decompose(TensorRegion::flat({2, 3, 4}, 3, 21));
  int64_t total = 0;
  for (const StoredBox& stored : boxes) {
    EXPECT_EQ(stored.storage_offset, total);  // boxes come in storage order, back to back
    total += stored.box.numel();
  }
  EXPECT_EQ(total, 18);
  EXPECT_LE(boxes.size(), 5u);
  std::vector<StoredBox> whole = decompose(TensorRegion::whole({2, 3, 4}));
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].box, (Box{{0, 0, 0}, {2, 3, 4}}));
  EXPECT_TRUE(decompose(TensorRegion::flat({4, 6}, 7, 7)).empty());
}

TEST(TensorRegion, TilingFindsOverlapsHolesAndOutOfBounds) {
  EXPECT_FALSE(tiling_problem({34, 6}, {Box{{0, 0}, {9, 6}}, Box{{9, 0}, {25, 6}}}));
  auto hole = tiling_problem({34, 6}, {Box{{0, 0}, {9, 6}}, Box{{10, 0}, {24, 6}}});
  ASSERT_TRUE(hole);
  EXPECT_NE(hole->find("6 of 204 elements"), std::string::npos) << *hole;
  auto overlap = tiling_problem({34, 6}, {Box{{0, 0}, {10, 6}}, Box{{9, 0}, {25, 6}}});
  ASSERT_TRUE(overlap);
  EXPECT_NE(overlap->find("overlap at offset [9, 0] shape [1, 6]"), std::string::npos) << *overlap;
  EXPECT_TRUE(tiling_problem({34, 6}, {Box{{30, 0}, {5, 6}}}));
  EXPECT_THROW(TensorRegion::split({34, 6}, 0, 30, 35).check_valid("w"), Error);
}

TEST(ShardFile, WritesSlicesWithAttributesAndReadsThemBack) {
  const auto dir = t6::testing::scratch_dir("shard_file");
  const auto path = dir / "shard_tp0_dp0.h5";

  // Rows 3..7 of a 10x4 F32 matrix; a ZeRO-1 flat range [7, 30) of a 8x5 BF16 matrix; an I64 vector.
  HostTensor rows({4, 4}, DType::F32);
  for (int i = 0; i < 16; ++i) rows.data<float>()[i] = 0.5f * float(i) - 3.0f;
  HostTensor moments({23}, DType::BF16);
  for (int i = 0; i < 23; ++i) moments.data<uint16_t>()[i] = float_to_bf16_bits(float(i) * 0.25f);
  HostTensor rng_state({3}, DType::I64);
  for (int i = 0; i < 3; ++i) rng_state.data<int64_t>()[i] = (int64_t(1) << 40) + i;

  ShardSummary summary;
  {
    ShardFileWriter writer(path, "save-1");
    writer.write("param/transformer.h.0.attn.c_qkv.W_A_q.weight", TensorRegion::split({10, 4}, 0, 3, 7), rows);
    writer.write("adam_m/x", TensorRegion::flat({8, 5}, 7, 30), moments);
    writer.write("state/rng", TensorRegion::whole({3}), rng_state);
    summary = writer.finish();
  }
  EXPECT_EQ(summary.record.file, "shard_tp0_dp0.h5");
  EXPECT_EQ(summary.record.bytes, std::filesystem::file_size(path));
  EXPECT_EQ(summary.record.xxh3_128, digest_file(path).xxh3_128);
  ASSERT_EQ(summary.record.slices.size(), 4u);  // the flat range of adam_m/x is two boxes
  EXPECT_EQ(summary.record.slices[1].box, (Box{{1, 2}, {1, 3}}));
  EXPECT_EQ(summary.record.slices[2].box, (Box{{2, 0}, {4, 5}}));
  ASSERT_EQ(summary.tensors.size(), 3u);
  EXPECT_EQ(summary.tensors[1], (TensorInfo{"adam_m/x", {8, 5}, DType::BF16}));

  // The index next to the file and the file's own attributes say the same.
  ShardSummary from_index = read_shard_index(shard_index_path(path));
  EXPECT_EQ(from_index.record, summary.record);
  EXPECT_EQ(from_index.tensors, summary.tensors);
  EXPECT_EQ(from_index.save_id, "save-1");
  ShardFileReader reader(path);
  EXPECT_EQ(reader.save_id(), "save-1");
  ShardSummary from_attributes = reader.read_contents();
  EXPECT_EQ(from_attributes.record.slices, summary.record.slices);
  EXPECT_EQ(from_attributes.tensors, summary.tensors);

  // A sub-box of the row slice: global rows 4..5, cols 1..3.
  const SliceRecord& row_slice = summary.record.slices[0];
  float part[2][2] = {};
  Box wanted{{4, 1}, {2, 2}};
  reader.read(row_slice, DType::F32, wanted, part, wanted);
  EXPECT_EQ(part[0][0], rows.data<float>()[1 * 4 + 1]);
  EXPECT_EQ(part[1][1], rows.data<float>()[2 * 4 + 2]);

  uint16_t bf16_row[5] = {};
  reader.read(summary.record.slices[2], DType::BF16, Box{{5, 0}, {1, 5}}, bf16_row, Box{{5, 0}, {1, 5}});
  EXPECT_EQ(bf16_bits_to_float(bf16_row[4]), 22 * 0.25f);  // element 29 = storage index 22

  int64_t rng_back[3] = {};
  reader.read(summary.record.slices[3], DType::I64, Box{{0}, {3}}, rng_back, Box{{0}, {3}});
  EXPECT_EQ(rng_back[2], (int64_t(1) << 40) + 2);
}

TEST(ShardFile, RejectsBadWrites) {
  const auto dir = t6::testing::scratch_dir("shard_file_bad");
  ShardFileWriter writer(dir / "shard.h5", "save-1");
  HostTensor data({4, 4}, DType::F32);
  EXPECT_THROW(writer.write("w", TensorRegion::split({10, 4}, 0, 3, 8), data), Error);  // 20 elements wanted
  EXPECT_THROW(writer.write("w", TensorRegion::split({10, 4}, 0, 8, 12), data), Error);  // outside
  writer.write("w", TensorRegion::split({10, 4}, 0, 0, 4), data);
  HostTensor other_dtype({4, 4}, DType::F64);
  EXPECT_THROW(writer.write("w", TensorRegion::split({10, 4}, 0, 4, 8), other_dtype), Error);
}

TEST(ShardFile, MissingOrForeignFileIsNamed) {
  const auto dir = t6::testing::scratch_dir("shard_file_missing");
  try {
    ShardFileReader reader(dir / "nope.h5");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("nope.h5"), std::string::npos);
  }
  std::ofstream(dir / "text.h5") << "not hdf5";
  EXPECT_THROW(ShardFileReader(dir / "text.h5"), Error);
}

TEST(FileChecksum, Xxh3Of128BitsMatchesKnownValuesAndStreams) {
  const auto dir = t6::testing::scratch_dir("checksum");
  std::ofstream(dir / "empty").close();
  FileDigest empty = digest_file(dir / "empty");
  EXPECT_EQ(empty.bytes, 0u);
  EXPECT_EQ(empty.xxh3_128, "99aa06d3014798d86001c324468d497f");
  // Larger than one 8 MiB read block, so the streaming path is exercised; one flipped bit changes it.
  std::string contents(9 << 20, 'x');
  std::ofstream(dir / "big", std::ios::binary) << contents;
  FileDigest big = digest_file(dir / "big");
  EXPECT_EQ(big.bytes, contents.size());
  contents[5 << 20] ^= 1;
  std::ofstream(dir / "big", std::ios::binary | std::ios::trunc) << contents;
  EXPECT_NE(digest_file(dir / "big").xxh3_128, big.xxh3_128);
  EXPECT_THROW(digest_file(dir / "absent"), Error);
}
