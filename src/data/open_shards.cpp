#include "data/open_shards.h"

#include "core/error.h"

namespace t6 {

OpenShards::OpenShards(size_t capacity) : capacity_(capacity) {
  T6_CHECK(capacity >= 1, "at most ", capacity, " open shards asked: at least one must be open to read");
}

const ShardReader& OpenShards::get(const std::string& path) {
  if (const auto found = by_path_.find(path); found != by_path_.end()) {
    readers_.splice(readers_.begin(), readers_, found->second);
    return readers_.front();
  }
  if (readers_.size() == capacity_) {
    by_path_.erase(readers_.back().path());
    readers_.pop_back();  // closes the file before the next one opens
  }
  readers_.emplace_front(path);
  by_path_.emplace(path, readers_.begin());
  return readers_.front();
}

}  // namespace t6
