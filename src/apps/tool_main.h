// The frame of the single-process tools (t6_ckpt, t6_generate, t6_eval): flag errors and t6 errors
// print one line, "NAME: error: MESSAGE", and exit 1; --help exits 0.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>

namespace t6 {

// Parses the command line; nullopt to go on, else the exit code to return (help or a bad flag).
inline std::optional<int> parse_command_line(CLI::App& app, const char* name, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  }
  return std::nullopt;
}

template <class Run>
int run_tool(const char* name, int argc, char** argv, Run run) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  }
}

}  // namespace t6
