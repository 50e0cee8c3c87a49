#include "parallel/communicator.h"

#include <cstring>
#include <vector>

namespace t6 {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
  }
  return "unknown";
}

std::string broadcast_string(Communicator& communicator, std::string text, int root) {
  int64_t length = int64_t(text.size());
  communicator.broadcast(Tensor(&length, {1}, DType::I64), root);
  std::vector<int32_t> words(size_t(length + 3) / 4, 0);
  if (communicator.rank() == root) std::memcpy(words.data(), text.data(), text.size());
  if (!words.empty()) communicator.broadcast(Tensor(words.data(), {int64_t(words.size())}, DType::I32), root);
  text.resize(size_t(length));
  std::memcpy(text.data(), words.data(), size_t(length));
  return text;
}

}  // namespace t6
