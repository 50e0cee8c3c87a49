#include "common/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"

namespace t6::testing {

namespace fs = std::filesystem;

fs::path write_run_toml(const RunConfig& config, const fs::path& path) {
  std::ofstream file(path);
  const nlohmann::json json = config.to_json();
  for (const auto& [section, keys] : json.items()) {
    file << "[" << section << "]\n";
    for (const auto& [key, value] : keys.items()) file << key << " = " << value.dump() << "\n";
  }
  return path;
}

pid_t start_process(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    std::freopen(log.c_str(), "w", stdout);
    std::freopen(log.c_str(), "a", stderr);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

pid_t start_mpi_pretrain(int ranks, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv = {mpiexec(), "-np", std::to_string(ranks), "--oversubscribe",
                                   (bin_dir() / "t6_pretrain").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return start_process(argv, log);
}

std::optional<int> wait_exit_code(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

// The state letter and parent of process `pid` from /proc/PID/stat; state 0 when it is gone.
std::pair<char, pid_t> state_and_parent(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name, in parentheses, may hold spaces: the fields after it are what we need.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return {0, -1};
  std::istringstream rest(text.substr(close + 2));
  char state = 0;
  pid_t parent = -1;
  rest >> state >> parent;
  return {state, parent};
}

bool has_environment_entry(pid_t pid, const std::string& entry) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/environ");
  std::string item;
  while (std::getline(file, item, '\0'))
    if (item == entry) return true;
  return false;
}

}  // namespace

pid_t parent_of(pid_t pid) { return state_and_parent(pid).second; }

bool process_runs(pid_t pid) {
  const char state = state_and_parent(pid).first;
  return state != 0 && state != 'Z' && state != 'X';
}

pid_t mpi_rank_pid(pid_t launcher, int rank) {
  const std::string entry = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& item : fs::directory_iterator("/proc")) {
      const std::string name = item.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const pid_t pid = std::stoi(name);
      const pid_t parent = parent_of(pid);
      if ((parent == launcher || (parent > 0 && parent_of(parent) == launcher)) && has_environment_entry(pid, entry))
        return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

StoppedRankOutcome stop_rank_and_wait(pid_t launcher, pid_t rank, double wait_seconds) {
  kill(rank, SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  StoppedRankOutcome outcome;
  outcome.exit_code = wait_exit_code(launcher, wait_seconds);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  kill(rank, SIGKILL);  // in case mpirun left it behind
  kill(-launcher, SIGKILL);
  return outcome;
}

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace t6::testing
