// Where tests find their inputs and the built tools.
#pragma once
#include <filesystem>
#include <string>

namespace t6::testing {

// The conformance fixtures: $T6_FIXTURE_DIR when set (read at run time), else tests/fixtures.
std::filesystem::path fixture_dir();
std::filesystem::path source_dir();         // the project's source tree
std::filesystem::path bin_dir();            // build/bin, where the tools are
std::string mpiexec();                      // the mpirun this build found
std::string node();                         // the node this build found
std::filesystem::path node_modules_dir();   // data_tools/cache/node_modules (fetch_node_packages.sh)
// A fresh, empty directory under the system temp dir, removed when the process exits normally.
std::filesystem::path scratch_dir(const std::string& label);

}  // namespace t6::testing
