// The run config key table in the two forms people read: the resolved config of a run as TOML
// (t6_pretrain --print-config), and the reference of every key (docs/CONFIG.md, written by
// t6_pretrain --print-config-doc; a test fails when the file and the table drift apart).
#pragma once
#include <string>

#include "train/run_config.h"

namespace t6 {

// Every key with its value, and where the value came from as a comment; read back with --config
// it gives the same config.
std::string resolved_config_toml(const RunConfig& config);

// Markdown: per section a table of key, type, default, valid values and meaning.
std::string config_reference_markdown();

}  // namespace t6
