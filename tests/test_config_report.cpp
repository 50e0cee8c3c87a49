// The run config key table in its printed forms (src/train/config_report.*): docs/CONFIG.md is what
// the table generates, --print-config's TOML names each value's source and reads back to the same
// config, and errors name where a bad value came from.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "train/config_report.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path path = scratch_dir("config_report") / name;
  std::ofstream(path) << text;
  return path;
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

const char* kSmallToml = "[model]\nn_layer = 2\nn_embd = 64\nn_head = 6\nhead_dim = 16\n"
                         "[train]\nmax_steps = 1000\nwarmup_steps = 100\n[data]\npath = \"data/tiny\"\n";

}  // namespace

TEST(ConfigDoc, DocsConfigMdIsWhatTheKeyTableGenerates) {
  const fs::path doc = source_dir() / "docs/CONFIG.md";
  ASSERT_TRUE(fs::exists(doc)) << doc;
  EXPECT_EQ(read_file(doc), config_reference_markdown())
      << "docs/CONFIG.md is out of date: regenerate it with build/bin/t6_pretrain --print-config-doc > docs/CONFIG.md";
}

TEST(ConfigDoc, EveryKeyHasARowWithItsDefaultAndRange) {
  const std::string doc = config_reference_markdown();
  EXPECT_NE(doc.find("| `lr` | float | `6e-4` | >= 0 |"), std::string::npos) << doc;
  EXPECT_NE(doc.find("| `beta2` | float | `0.95` | in [0, 1) |"), std::string::npos) << doc;
  EXPECT_NE(doc.find("| `resume` | string | `\"never\"` | one of \"never\", \"auto\" |"), std::string::npos) << doc;
  for (const ConfigKey<RunConfig>& key : run_config_keys()) {
    EXPECT_NE(doc.find("## [" + key.section() + "]"), std::string::npos) << key.name;
    EXPECT_NE(doc.find("| `" + key.key() + "` | "), std::string::npos) << key.name;
    EXPECT_FALSE(key.meaning.empty()) << key.name;
  }
}

TEST(PrintConfig, ValuesReadBackExactly) {
  for (const ConfigValue& value : {ConfigValue(1e-8), ConfigValue(3.0), ConfigValue(0.1), ConfigValue(2e-4), ConfigValue(6e-4),
                                   ConfigValue(1.0 / 3.0), ConfigValue(int64_t(-7)), ConfigValue(true),
                                   ConfigValue(std::string("a \"b\" \\ c\td"))}) {
    const std::string text = format_config_value(value);
    SCOPED_TRACE(text);
    const toml::table parsed = toml::parse("v = " + text);
    const toml::node& node = *parsed.get("v");
    if (const double* real = std::get_if<double>(&value)) {
      ASSERT_TRUE(node.is_floating_point());
      EXPECT_EQ(*node.value<double>(), *real);
    } else if (const int64_t* integer = std::get_if<int64_t>(&value)) {
      EXPECT_EQ(*node.value<int64_t>(), *integer);
    } else if (const bool* flag = std::get_if<bool>(&value)) {
      EXPECT_EQ(*node.value<bool>(), *flag);
    } else {
      EXPECT_EQ(*node.value<std::string>(), std::get<std::string>(value));
    }
  }
  EXPECT_EQ(format_config_value(2e-4), "2e-4");
  EXPECT_EQ(format_config_value(3.0), "3.0");
}

TEST(PrintConfig, NamesEachSourceAndReadsBackToTheSameConfig) {
  const fs::path file = write_file("small.toml", kSmallToml);
  const RunConfig config = load_run_config(file.string(), {"train.lr=1e-3", "parallel.zero1=true", "data.path=/x y/z"});
  const std::string printed = resolved_config_toml(config);
  EXPECT_NE(printed.find("lr = 0.001  # --set train.lr=1e-3\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("n_layer = 2  # " + file.string() + "\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("beta1 = 0.9  # default\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("path = \"/x y/z\"  # --set data.path=/x y/z\n"), std::string::npos) << printed;
  for (const ConfigKey<RunConfig>& key : run_config_keys())
    EXPECT_NE(printed.find("\n" + key.key() + " = "), std::string::npos) << key.name;

  const fs::path fed_back = write_file("resolved.toml", printed);
  const RunConfig reread = load_run_config(fed_back.string());
  EXPECT_EQ(reread.to_json(), config.to_json());
  // Every key now comes from the printed file.
  for (const ConfigKey<RunConfig>& key : run_config_keys()) EXPECT_EQ(reread.source_of(key.name), fed_back.string());
  EXPECT_EQ(resolved_config_toml(load_run_config(fed_back.string())), resolved_config_toml(reread));
}

TEST(PrintConfig, TheToolPrintsTheResolvedConfigAndExits) {
  const fs::path file = write_file("tool.toml", kSmallToml);
  const std::string command = (bin_dir() / "t6_pretrain").string() + " --config " + file.string() +
                              " --set train.seed=5 --print-config > " + (file.string() + ".out") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(file.string() + ".out");
  const RunConfig expected = load_run_config(file.string(), {"train.seed=5"});
  EXPECT_EQ(read_file(file.string() + ".out"), resolved_config_toml(expected));
  // Nothing else happened: no run directory was made.
  EXPECT_FALSE(fs::exists("runs/default/metrics.jsonl") && fs::last_write_time("runs/default/metrics.jsonl") >
                                                                 fs::last_write_time(file));
}

TEST(ConfigSources, ErrorsNameWhereTheBadValueCameFrom) {
  const fs::path file = write_file("sources.toml", std::string(kSmallToml) + "[checkpoint]\nresume = \"sometimes\"\n");
  expect_mentions(error_of([&] { load_run_config(file.string()); }),
                  {file.string(), "checkpoint.resume", "\"sometimes\"", "checkpoint.resume: " + file.string()});

  const fs::path good = write_file("good.toml", kSmallToml);
  expect_mentions(error_of([&] { load_run_config(good.string(), {"parallel.tp=0"}); }),
                  {"parallel.tp must be >= 1, got 0", "parallel.tp: --set parallel.tp=0"});
  // An explicit horizon below the file's warmup (the default one never is).
  expect_mentions(error_of([&] { load_run_config(good.string(), {"train.lr_decay_steps=50"}); }),
                  {"train.lr_decay_steps: --set train.lr_decay_steps=50", "train.warmup_steps: " + good.string()});
  // A key named inside another's name is not reported: train.lr is not in train.lr_decay_steps.
  const std::string message = error_of([&] { load_run_config(good.string(), {"train.lr_decay_steps=50"}); });
  EXPECT_EQ(message.find("train.lr:"), std::string::npos) << message;
  expect_mentions(error_of([&] { load_run_config(good.string(), {"model.head_dim=15"}); }),
                  {"model.head_dim must be even", "model.head_dim: --set model.head_dim=15"});
}

TEST(ConfigSources, WithSourcesOnlyAddsKeysTheMessageNames) {
  RunConfig config;
  config.sources["train.lr"] = "--set train.lr=1";
  EXPECT_EQ(config.with_sources("nothing to see"), "nothing to see");
  EXPECT_EQ(config.with_sources("train.lr is bad."), "train.lr is bad. (train.lr: --set train.lr=1)");
  EXPECT_EQ(config.with_sources("train.lr_decay_steps and model.kind"),
            "train.lr_decay_steps and model.kind (model.kind: default; train.lr_decay_steps: default)");
}
