// Where t6_preprocess writes a corpus: a staging directory beside the output (same filesystem,
// named .NAME.t6-staging), which becomes the output only once the corpus in it is complete. The
// output directory is therefore either absent, the old corpus, or the new one, never a mix: a
// failure at any point (a bad input, a full disk, a crash) leaves an old corpus intact, and a failed
// run leaves neither the output nor the staging directory, nor any parent it created.
#pragma once
#include <filesystem>
#include <vector>

namespace t6 {

class CorpusStaging {
 public:
  // Checks that `output` is absent, or with `overwrite` a directory holding only a corpus's files
  // (shards and index), so that replacing it loses nothing else; then creates the staging directory
  // (and missing parents). Throws t6::Error naming the path otherwise.
  CorpusStaging(const std::filesystem::path& output, bool overwrite);
  ~CorpusStaging();  // unless committed: removes the staging directory and the parents it created
  CorpusStaging(const CorpusStaging&) = delete;
  CorpusStaging& operator=(const CorpusStaging&) = delete;

  const std::filesystem::path& directory() const { return staging_; }
  // Makes the staged corpus the output durably: fsyncs the staging directory, then renames it over
  // the output (an atomic exchange with an old corpus, which is then removed).
  void commit();

 private:
  std::filesystem::path output_, staging_;
  std::vector<std::filesystem::path> created_parents_;  // deepest first
  bool committed_ = false;
};

}  // namespace t6
