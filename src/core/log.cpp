#include "core/log.h"

#include "core/mpi_c.h"

#include <cstdio>

namespace t6 {

namespace {
std::FILE* log_copy = nullptr;  // the log rank's RUN_DIR/console.log, once a run claimed its directory
}  // namespace

void copy_log_to_file(const std::filesystem::path& path) {
  if (!is_log_rank()) return;
  std::FILE* file = std::fopen(path.c_str(), "a");
  T6_CHECK(file, "cannot open ", path.string(), " to keep a copy of the console log");
  if (log_copy) std::fclose(log_copy);
  log_copy = file;
}

void copy_line_to_log_file(const std::string& line) {
  if (!log_copy) return;
  std::fputs(line.c_str(), log_copy);
  std::fputc('\n', log_copy);
  std::fflush(log_copy);
}

bool is_log_rank() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return true;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}

void log_line(const std::string& line) {
  if (!is_log_rank()) return;
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  copy_line_to_log_file(line);
}

}  // namespace t6
