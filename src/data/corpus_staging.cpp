#include "data/corpus_staging.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/durable_file.h"
#include "core/error.h"
#include "data/corpus_index.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;

// "data/corpus/" and "data/corpus" name the same directory; the staging path needs its name.
fs::path normalised(const fs::path& output) {
  fs::path path = fs::absolute(output).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return path;
}

bool is_corpus_file(const std::string& name) {
  const bool is_shard = (name.starts_with("train_") || name.starts_with("val_")) && name.ends_with(".h5");
  return is_shard || name == kCorpusIndexFile || name == std::string(kCorpusIndexFile) + ".tmp";
}

void check_replaceable(const fs::path& output, const std::string& shown) {
  T6_CHECK(fs::is_directory(output), shown, ": exists and is not a directory");
  for (const auto& entry : fs::directory_iterator(output)) {
    const std::string name = entry.path().filename().string();
    T6_CHECK(entry.is_regular_file() && is_corpus_file(name), shown, ": holds ", name,
             ", which is not part of a corpus; --overwrite replaces a corpus directory as a whole, so move ",
             name, " away or choose another --output");
  }
}

}  // namespace

CorpusStaging::CorpusStaging(const fs::path& output, bool overwrite) : output_(normalised(output)) {
  const std::string shown = output.string();
  T6_CHECK(output_.has_parent_path() && output_ != output_.root_path(), shown, ": cannot be the output directory");
  std::error_code error;
  if (fs::exists(output_, error)) {
    T6_CHECK(overwrite, shown, ": output directory exists (pass --overwrite to replace it)");
    check_replaceable(output_, shown);
  }
  for (fs::path parent = output_.parent_path(); !fs::exists(parent, error); parent = parent.parent_path())
    created_parents_.push_back(parent);
  std::string staging_name = output_.filename().string();
  staging_name.insert(0, 1, '.');
  staging_name += ".t6-staging";
  staging_ = output_.parent_path() / staging_name;
  fs::remove_all(staging_, error);  // left by a run that crashed: it was never the output
  T6_CHECK(!error, staging_.string(), ": cannot remove the staging directory of an earlier run (", error.message(), ")");
  fs::create_directories(staging_, error);
  T6_CHECK(!error, shown, ": cannot create the output directory's staging directory ", staging_.string(), " (",
           error.message(), ")");
}

CorpusStaging::~CorpusStaging() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
  for (const fs::path& parent : created_parents_) fs::remove(parent, ignored);  // only while empty
}

void CorpusStaging::commit() {
  fsync_directory(staging_);
  std::error_code error;
  if (!fs::exists(output_, error)) {
    rename_durably(staging_, output_);
    committed_ = true;
    return;
  }
  // Swap in one step, so that no moment exists without a whole corpus at the output path.
  T6_CHECK(::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, output_.c_str(), RENAME_EXCHANGE) == 0,
           "cannot replace ", output_.string(), " by the new corpus in ", staging_.string(), ": ",
           std::strerror(errno), errno == EINVAL ? " (this filesystem cannot exchange two directories atomically:"
                                 " remove the old corpus, then run without --overwrite)" : "",
           "; the old corpus is unchanged");
  fsync_directory(output_.parent_path());
  committed_ = true;
  fs::remove_all(staging_, error);  // now the old corpus
  T6_CHECK(!error, "the new corpus is in ", output_.string(), ", but its predecessor, moved to ", staging_.string(),
           ", could not be removed (", error.message(), ")");
}

}  // namespace t6
