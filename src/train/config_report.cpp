#include "train/config_report.h"

namespace t6 {

namespace {

// A table cell: '|' would end the cell early.
std::string cell(const std::string& text) {
  std::string escaped;
  for (const char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
  return escaped;
}

}  // namespace

std::string resolved_config_toml(const RunConfig& config) {
  std::string toml =
      "# The resolved t6 run config: every key, and after '#' where its value came from (the default,\n"
      "# the config file or --set). Run it as it is with --config FILE.\n";
  std::string section;
  for (const ConfigKey<RunConfig>& key : run_config_keys()) {
    if (key.section() != section) {
      section = key.section();
      toml += str("\n[", section, "]\n");
    }
    toml += str(key.key(), " = ", format_config_value(key.get(config)), "  # ", config.source_of(key.name), "\n");
  }
  return toml;
}

std::string config_reference_markdown() {
  const RunConfig defaults;
  std::string markdown =
      "# t6 run config keys\n\n"
      "Generated from the key table in `src/train/run_config.cpp` and `src/model/model_config.cpp` by\n"
      "`build/bin/t6_pretrain --print-config-doc > docs/CONFIG.md`; `tests/test_config_report.cpp` fails\n"
      "when this file and the table differ.\n\n"
      "A run config is a TOML file (`configs/*.toml`) with the sections below. Every key can be\n"
      "overridden on the command line with `--set section.key=value` (value in TOML syntax; a bare word\n"
      "is a string). A key that is not given keeps its default. Unknown sections and keys, values of the\n"
      "wrong type and values outside the valid range stop the run at start-up with one line naming the\n"
      "key and where its value came from (the file, `--set`, or the default).\n"
      "`t6_pretrain --config FILE [--set ...] --print-config` prints the resolved config, each value\n"
      "with its source, as TOML that `--config` reads back.\n";
  std::string section;
  for (const ConfigKey<RunConfig>& key : run_config_keys()) {
    if (key.section() != section) {
      section = key.section();
      markdown += str("\n## [", section, "]\n\n| key | type | default | valid values | meaning |\n|---|---|---|---|---|\n");
    }
    markdown += str("| `", key.key(), "` | ", config_type_name(key.type), " | `", cell(format_config_value(key.get(defaults))),
                    "` | ", cell(key.range.describe()), " | ", cell(key.meaning), " |\n");
  }
  return markdown;
}

}  // namespace t6
