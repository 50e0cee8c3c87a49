#include "common/test_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "core/build_paths.h"

namespace t6::testing {

std::filesystem::path fixture_dir() {
  if (const char* override_dir = std::getenv("T6_FIXTURE_DIR"); override_dir && *override_dir) return override_dir;
  return T6_TEST_FIXTURE_DIR;
}

std::filesystem::path source_dir() { return build_source_dir(); }
std::filesystem::path bin_dir() { return T6_BIN_DIR; }
std::string mpiexec() { return MPIEXEC_EXECUTABLE; }
std::string node() { return T6_NODE_EXECUTABLE; }
std::filesystem::path node_modules_dir() { return source_dir() / "data_tools/cache/node_modules"; }

namespace {
struct ScratchDirs {
  std::vector<std::filesystem::path> paths;
  ~ScratchDirs() {
    std::error_code ignored;
    for (const auto& path : paths) std::filesystem::remove_all(path, ignored);
  }
};
ScratchDirs scratch_dirs;
}  // namespace

std::filesystem::path scratch_dir(const std::string& label) {
  std::string pattern = (std::filesystem::temp_directory_path() / ("t6_" + label + "_XXXXXX")).string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory for " + label);
  scratch_dirs.paths.emplace_back(pattern);
  return pattern;
}

}  // namespace t6::testing
