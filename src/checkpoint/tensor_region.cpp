#include "checkpoint/tensor_region.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace t6::checkpoint {

std::string extents_to_string(const Extents& extents) {
  std::ostringstream out;
  out << '[';
  for (size_t axis = 0; axis < extents.size(); ++axis) out << (axis ? ", " : "") << extents[axis];
  out << ']';
  return out.str();
}

int64_t extents_numel(const Extents& extents) {
  int64_t count = 1;
  for (int64_t extent : extents) count *= extent;
  return count;
}

std::string Box::to_string() const {
  return str("offset ", extents_to_string(offset), " shape ", extents_to_string(shape));
}

bool box_fits(const Extents& global_shape, const Box& box) {
  if (box.offset.size() != global_shape.size() || box.shape.size() != global_shape.size()) return false;
  for (size_t axis = 0; axis < global_shape.size(); ++axis) {
    if (box.offset[axis] < 0 || box.shape[axis] < 0 || box.offset[axis] + box.shape[axis] > global_shape[axis])
      return false;
  }
  return true;
}

std::optional<Box> intersect(const Box& a, const Box& b) {
  T6_ASSERT(a.offset.size() == b.offset.size());
  Box common;
  for (size_t axis = 0; axis < a.offset.size(); ++axis) {
    int64_t begin = std::max(a.offset[axis], b.offset[axis]);
    int64_t end = std::min(a.offset[axis] + a.shape[axis], b.offset[axis] + b.shape[axis]);
    if (end <= begin) return std::nullopt;
    common.offset.push_back(begin);
    common.shape.push_back(end - begin);
  }
  return common;
}

TensorRegion TensorRegion::whole(const Extents& global_shape) {
  return slice(global_shape, Extents(global_shape.size(), 0), global_shape);
}

TensorRegion TensorRegion::slice(const Extents& global_shape, const Extents& offset, const Extents& shape) {
  return flat_of_slice(global_shape, offset, shape, 0, extents_numel(shape));
}

TensorRegion TensorRegion::split(const Extents& global_shape, int axis, int64_t begin, int64_t end) {
  T6_CHECK(axis >= 0 && size_t(axis) < global_shape.size(), "split axis ", axis, " out of range for shape ",
           extents_to_string(global_shape));
  Extents offset(global_shape.size(), 0), shape = global_shape;
  offset[axis] = begin;
  shape[axis] = end - begin;
  return slice(global_shape, offset, shape);
}

TensorRegion TensorRegion::flat(const Extents& global_shape, int64_t begin, int64_t end) {
  return flat_of_slice(global_shape, Extents(global_shape.size(), 0), global_shape, begin, end);
}

TensorRegion TensorRegion::flat_of_slice(const Extents& global_shape, const Extents& offset,
                                         const Extents& shape, int64_t begin, int64_t end) {
  return TensorRegion{global_shape, Box{offset, shape}, begin, end};
}

std::string TensorRegion::to_string() const {
  std::string text = box.to_string();
  if (flat_begin != 0 || flat_end != box.numel()) text += str(" elements [", flat_begin, ", ", flat_end, ")");
  return text;
}

void TensorRegion::check_valid(const std::string& tensor) const {
  const size_t ndim = global_shape.size();
  T6_CHECK(ndim >= 1, "tensor '", tensor, "': a checkpoint tensor needs at least one axis (use shape [1])");
  T6_CHECK(box.offset.size() == ndim && box.shape.size() == ndim, "tensor '", tensor, "' of shape ",
           extents_to_string(global_shape), ": region ", box.to_string(), " has another number of axes");
  for (size_t axis = 0; axis < ndim; ++axis) {
    T6_CHECK(box.offset[axis] >= 0 && box.shape[axis] >= 0 &&
                 box.offset[axis] + box.shape[axis] <= global_shape[axis],
             "tensor '", tensor, "' of shape ", extents_to_string(global_shape), ": region ", box.to_string(),
             " lies outside it on axis ", axis);
  }
  T6_CHECK(0 <= flat_begin && flat_begin <= flat_end && flat_end <= box.numel(), "tensor '", tensor,
           "': flat range [", flat_begin, ", ", flat_end, ") does not fit ", box.to_string());
}

namespace {

// Appends the boxes covering [begin, end) of the row-major sub-tensor at `prefix` (indices of the
// axes before `axis`); a partial leading row, a block of whole rows, a partial trailing row.
void decompose_range(const Extents& shape, size_t axis, Extents& prefix, int64_t begin, int64_t end,
                     std::vector<Box>& out) {
  if (begin >= end) return;
  int64_t stride = 1;
  for (size_t inner = axis + 1; inner < shape.size(); ++inner) stride *= shape[inner];
  auto recurse = [&](int64_t index, int64_t sub_begin, int64_t sub_end) {
    prefix.push_back(index);
    decompose_range(shape, axis + 1, prefix, sub_begin, sub_end, out);
    prefix.pop_back();
  };
  if (begin % stride != 0) {
    int64_t index = begin / stride;
    int64_t sub_end = std::min(end, (index + 1) * stride);
    recurse(index, begin - index * stride, sub_end - index * stride);
    begin = sub_end;
  }
  int64_t whole_rows = (end - begin) / stride;
  if (whole_rows > 0) {
    Box block;
    block.offset = prefix;
    block.offset.push_back(begin / stride);
    block.shape.assign(prefix.size(), 1);
    block.shape.push_back(whole_rows);
    for (size_t inner = axis + 1; inner < shape.size(); ++inner) {
      block.offset.push_back(0);
      block.shape.push_back(shape[inner]);
    }
    out.push_back(block);
    begin += whole_rows * stride;
  }
  if (begin < end) recurse(begin / stride, 0, end - begin);
}

int64_t row_major_index(const Extents& shape, const Extents& index) {
  int64_t flat = 0;
  for (size_t axis = 0; axis < shape.size(); ++axis) flat = flat * shape[axis] + index[axis];
  return flat;
}

}  // namespace

std::vector<StoredBox> decompose(const TensorRegion& region) {
  std::vector<Box> local_boxes;
  Extents prefix;
  decompose_range(region.box.shape, 0, prefix, region.flat_begin, region.flat_end, local_boxes);
  std::vector<StoredBox> stored;
  for (Box& local : local_boxes) {
    int64_t storage_offset = row_major_index(region.box.shape, local.offset) - region.flat_begin;
    for (size_t axis = 0; axis < local.offset.size(); ++axis) local.offset[axis] += region.box.offset[axis];
    stored.push_back({std::move(local), storage_offset});
  }
  return stored;
}

std::optional<std::string> overlap_problem(std::vector<Box> boxes) {
  std::erase_if(boxes, [](const Box& box) { return box.numel() == 0; });
  // Sweep along axis 0: only boxes whose first-axis ranges meet can overlap.
  std::sort(boxes.begin(), boxes.end(), [](const Box& a, const Box& b) { return a.offset[0] < b.offset[0]; });
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (size_t j = i + 1; j < boxes.size() && boxes[j].offset[0] < boxes[i].offset[0] + boxes[i].shape[0]; ++j) {
      if (auto common = intersect(boxes[i], boxes[j])) {
        return str("slices ", boxes[i].to_string(), " and ", boxes[j].to_string(), " overlap at ", common->to_string());
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> tiling_problem(const Extents& global_shape, const std::vector<Box>& boxes) {
  int64_t covered = 0;
  for (const Box& box : boxes) {
    if (!box_fits(global_shape, box)) return str("slice ", box.to_string(), " lies outside the global shape ", extents_to_string(global_shape));
    covered += box.numel();
  }
  if (auto overlap = overlap_problem(boxes)) return overlap;
  int64_t total = extents_numel(global_shape);
  if (covered != total) return str(total - covered, " of ", total, " elements are in no shard file");
  return std::nullopt;
}

}  // namespace t6::checkpoint
