// Where a piece of a global tensor lies: a box (per-axis offset and extent) or, for ZeRO-1 shards, a
// flat range of such a box. Every region decomposes into a few boxes; shard files store boxes and
// the reader reshards by intersecting boxes, so any saved layout loads into any other.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace t6::checkpoint {

using Extents = std::vector<int64_t>;

std::string extents_to_string(const Extents& extents);  // "[34, 8]"
int64_t extents_numel(const Extents& extents);

struct Box {
  Extents offset;  // first index on each axis, in global coordinates
  Extents shape;   // extent on each axis

  int64_t numel() const { return extents_numel(shape); }
  std::string to_string() const;  // "offset [9, 0] shape [9, 8]"
  bool operator==(const Box& other) const = default;
};

// Whether `box` has the axes of `global_shape` and lies inside it.
bool box_fits(const Extents& global_shape, const Box& box);

// The part two boxes share; nullopt when they do not meet or either is empty.
std::optional<Box> intersect(const Box& a, const Box& b);

// Elements [flat_begin, flat_end) of `box` flattened row-major. A plain slice is the whole box.
struct TensorRegion {
  Extents global_shape;
  Box box;
  int64_t flat_begin = 0;
  int64_t flat_end = 0;

  static TensorRegion whole(const Extents& global_shape);
  static TensorRegion slice(const Extents& global_shape, const Extents& offset, const Extents& shape);
  // Rows [begin, end) of `axis` (the usual TP split), all of every other axis.
  static TensorRegion split(const Extents& global_shape, int axis, int64_t begin, int64_t end);
  // A ZeRO-1 shard: elements [begin, end) of the whole tensor flattened row-major.
  static TensorRegion flat(const Extents& global_shape, int64_t begin, int64_t end);
  // A ZeRO-1 shard of a TP slice: elements [begin, end) of the slice `offset`/`shape` flattened.
  static TensorRegion flat_of_slice(const Extents& global_shape, const Extents& offset,
                                    const Extents& shape, int64_t begin, int64_t end);

  int64_t numel() const { return flat_end - flat_begin; }
  std::string to_string() const;
  // Throws t6::Error naming `tensor` when the region does not fit its global shape.
  void check_valid(const std::string& tensor) const;
};

// One box of a region and where its elements start in the region's row-major storage.
struct StoredBox {
  Box box;
  int64_t storage_offset = 0;
};

// The region as at most 2·ndim − 1 boxes in storage order (none when it is empty).
std::vector<StoredBox> decompose(const TensorRegion& region);

// Why `boxes` do not tile a tensor of `global_shape` exactly (out of bounds, overlapping, or leaving
// elements uncovered); nullopt when they do.
std::optional<std::string> tiling_problem(const Extents& global_shape, const std::vector<Box>& boxes);
// Why `boxes` overlap; nullopt when no two share an element.
std::optional<std::string> overlap_problem(std::vector<Box> boxes);

}  // namespace t6::checkpoint
