// Rank-0 logging: log_info("step ", step, " loss ", loss) prints one line to stdout on world rank 0
// (or on the only process when MPI is not running) and nothing on other ranks, so a multi-rank run
// reads like a single-rank one.
#pragma once
#include <filesystem>
#include <string>

#include "core/error.h"

namespace t6 {

bool is_log_rank();                        // world rank 0, or no MPI
void log_line(const std::string& line);    // prints line + '\n' and flushes, on the log rank only

// From now on the log rank also appends every log line to `path` (RUN_DIR/console.log of a run),
// flushed per line, so the run directory keeps what the console showed. Throws naming the file.
void copy_log_to_file(const std::filesystem::path& path);
// Appends `line` to that copy only (an error a main prints to stderr itself); nothing without one.
void copy_line_to_log_file(const std::string& line);

template <class... Parts>
void log_info(const Parts&... parts) {
  if (is_log_rank()) log_line(str(parts...));
}

}  // namespace t6
