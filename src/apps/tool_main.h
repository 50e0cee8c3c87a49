// The frame of the single-process tools (t6_ckpt, t6_generate, t6_eval): flag errors and t6 errors
// print one line, "NAME: error: MESSAGE", and exit 1; --help exits 0.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace t6 {

// For a tool with subcommands: the first argument when it is a word that names none of them (CLI11
// itself would only say "A subcommand is required"), else empty.
inline std::string unknown_subcommand(CLI::App& app, int argc, char** argv) {
  const std::vector<CLI::App*> subcommands = app.get_subcommands([](CLI::App*) { return true; });
  if (subcommands.empty() || argc < 2 || argv[1][0] == '-') return "";
  std::string known;
  for (const CLI::App* subcommand : subcommands) {
    if (subcommand->check_name(argv[1])) return "";
    known += (known.empty() ? "" : ", ") + subcommand->get_name();
  }
  return std::string("unknown subcommand '") + argv[1] + "' (one of: " + known + ")";
}

// Parses the command line; nullopt to go on, else the exit code to return (help or a bad flag).
inline std::optional<int> parse_command_line(CLI::App& app, const char* name, int argc, char** argv) {
  if (const std::string unknown = unknown_subcommand(app, argc, argv); !unknown.empty()) {
    std::fprintf(stderr, "%s: error: %s\n", name, unknown.c_str());
    return 1;
  }
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
