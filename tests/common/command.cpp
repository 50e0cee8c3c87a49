#include "common/command.h"

#include <cstdio>
#include <sys/wait.h>

#include "common/test_paths.h"

namespace t6::testing {

CommandResult run_command(const std::string& command, int timeout_seconds) {
  const std::string limited = "timeout " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
  FILE* pipe = popen(limited.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pipe ? pclose(pipe) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string mpirun_prefix(int ranks) {
  return "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + mpiexec() + " -np " + std::to_string(ranks) +
         " --oversubscribe ";
}

}  // namespace t6::testing
