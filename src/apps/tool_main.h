// The frame of the tools: flag errors and t6 errors print one line, "NAME: error: MESSAGE", and exit
// 1 (an allocation that fails names the command it stopped); --help exits 0. run_tool is for the
// single-process ones (t6_ckpt, t6_generate, t6_eval); t6_pretrain parses with parse_command_line
// under run_mpi_tool. Every tool starts with OpenMP's passive wait policy unless the user chose one
// (openmp_wait_policy.h).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "apps/openmp_wait_policy.h"

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
// `report` false parses silently: under mpirun every rank parses the same command line, and one
// rank prints the help or the error for all of them.
inline std::optional<int> parse_command_line(CLI::App& app, const char* name, int argc, char** argv,
                                             bool report = true) {
  if (const std::string unknown = unknown_subcommand(app, argc, argv); !unknown.empty()) {
    if (report) std::fprintf(stderr, "%s: error: %s\n", name, unknown.c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return report ? app.exit(error) : 0;
    if (report) std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  }
  return std::nullopt;
}

// A failed allocation names the command it stopped, so the user sees which inputs asked too much.
inline std::string out_of_memory_message(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  return "out of host memory (std::bad_alloc) running `" + command +
         "`: free memory, or give it a smaller model, batch, cache or --memory-budget";
}

template <class Run>
int run_tool(const char* name, int argc, char** argv, Run run) {
  use_passive_openmp_wait(argv);
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: %s\n", name, out_of_memory_message(argc, argv).c_str());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  }
}

}  // namespace t6
