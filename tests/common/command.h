// Running the built tools from tests: a shell command with a time limit, and the mpirun prefix.
#pragma once
#include <string>

namespace t6::testing {

struct CommandResult {
  int exit_code;       // 124: the time limit ended it
  std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command, int timeout_seconds = 240);

// "env OMPI_ALLOW_RUN_AS_ROOT=1 ... mpirun -np N --oversubscribe " (CI runs as root).
std::string mpirun_prefix(int ranks);

}  // namespace t6::testing
