// Run configs (src/train/run_config.*): the shipped configs/*.toml against docs/MODEL.md sections 3 and
// 4, --set overrides of every value type, errors that name the file (or --set) and the key, the
// lr_decay_steps default, and the JSON round trip the checkpoint manifest relies on.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "core/error.h"
#include "train/run_config.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

// A small valid config; tests append to it or override it.
const char* kBaseToml = R"([model]
kind = "T6"
n_layer = 2
n_embd = 64
n_head = 6
head_dim = 16
q_rank = 6
rank = 2
vocab_size = 128

[train]
max_steps = 1000
lr = 6e-4
min_lr = 3e-5
warmup_steps = 100

[data]
path = "data/tiny"
)";

fs::path write_toml(const std::string& text, const std::string& name = "run.toml") {
  const fs::path path = t6::testing::scratch_dir("run_config") / name;
  std::ofstream(path) << text;
  return path;
}

// The error of loading the base config with `extra` appended (TOML) and `overrides` applied.
struct LoadError {
  fs::path path;
  std::string message;
};
LoadError load_error(const std::string& extra, const std::vector<std::string>& overrides = {}) {
  const fs::path path = write_toml(std::string(kBaseToml) + extra);
  return {path, error_of([&] { load_run_config(path.string(), overrides); })};
}

RunConfig load_base(const std::vector<std::string>& overrides) {
  return load_run_config(write_toml(kBaseToml).string(), overrides);
}

std::string one_decimal_millions(int64_t count) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", double(count) / 1e6);
  return text;
}

// A row of docs/MODEL.md section 3 (model) and section 4 (its recipe).
struct PaperConfig {
  ModelKind kind;
  int64_t L, d, H, D, Rq, R, group, hidden;
  std::string params;  // "" where the spec gives no count
  double lr, min_lr;
};

// The configs that reproduce the paper. Others (t6-demo, ...) only have to load and validate.
const std::map<std::string, PaperConfig> kPaperConfigs = {
    {"t6-small.toml", {ModelKind::T6, 12, 768, 34, 64, 6, 2, 1, 2048, "124.3", 6e-4, 3e-5}},
    {"t6-medium.toml", {ModelKind::T6, 24, 1024, 47, 64, 6, 2, 1, 2730, "354.0", 6e-4, 3e-5}},
    {"t6-large.toml", {ModelKind::T6, 36, 1280, 61, 64, 6, 2, 1, 3413, "773.7", 2e-4, 1e-5}},
    {"t6-xl.toml", {ModelKind::T6, 48, 1600, 78, 64, 6, 2, 1, 4266, "1555.8", 1e-4, 1e-5}},
    {"mha-small.toml", {ModelKind::llama_mha, 12, 768, 12, 64, 0, 0, 1, 2048, "", 6e-4, 3e-5}},
    {"gqa-small.toml", {ModelKind::llama_gqa, 12, 768, 22, 64, 0, 0, 11, 2048, "", 6e-4, 3e-5}},
    {"mqa-small.toml", {ModelKind::llama_gqa, 12, 768, 23, 64, 0, 0, 23, 2048, "", 6e-4, 3e-5}},
    {"kvonly-small.toml", {ModelKind::T6_kvonly, 12, 768, 22, 64, 0, 2, 1, 2048, "", 6e-4, 3e-5}},
    {"mla-small.toml", {ModelKind::llama_mla, 12, 768, 13, 64, 0, 0, 1, 2048, "123.1", 6e-4, 3e-5}},
    // The baselines at the larger sizes, with the official repository's head counts and learning rates.
    {"mha-medium.toml", {ModelKind::llama_mha, 24, 1024, 16, 64, 0, 0, 1, 2730, "353.5", 3e-4, 3e-5}},
    {"mha-large.toml", {ModelKind::llama_mha, 36, 1280, 20, 64, 0, 0, 1, 3413, "772.1", 2e-4, 1e-5}},
    {"mha-xl.toml", {ModelKind::llama_mha, 48, 1600, 25, 64, 0, 0, 1, 4266, "1554.9", 1e-4, 1e-5}},
    {"gqa-medium.toml", {ModelKind::llama_gqa, 24, 1024, 30, 64, 0, 0, 15, 2730, "353.5", 6e-4, 3e-5}},
    {"gqa-large.toml", {ModelKind::llama_gqa, 36, 1280, 38, 64, 0, 0, 19, 3413, "772.1", 2e-4, 1e-5}},
    {"gqa-xl.toml", {ModelKind::llama_gqa, 48, 1600, 48, 64, 0, 0, 24, 4266, "1554.9", 1e-4, 1e-5}},
    {"kvonly-medium.toml", {ModelKind::T6_kvonly, 24, 1024, 29, 64, 0, 2, 1, 2730, "353.2", 3e-4, 3e-5}},
    {"kvonly-large.toml", {ModelKind::T6_kvonly, 36, 1280, 37, 64, 0, 2, 1, 3413, "773.1", 2e-4, 1e-5}},
    {"kvonly-xl.toml", {ModelKind::T6_kvonly, 48, 1600, 47, 64, 0, 2, 1, 4266, "1559.5", 1e-4, 1e-5}},
    {"mla-medium.toml", {ModelKind::llama_mla, 24, 1024, 23, 64, 0, 0, 1, 2730, "418.0", 6e-4, 3e-5}},
    {"mla-large.toml", {ModelKind::llama_mla, 36, 1280, 34, 64, 0, 0, 1, 3413, "909.3", 2e-4, 1e-5}},
    {"mla-xl.toml", {ModelKind::llama_mla, 48, 1600, 49, 64, 0, 0, 1, 4266, "1810.1", 1e-4, 1e-5}},
};

}  // namespace

// ---- the shipped configs -----------------------------------------------------------------------

TEST(ShippedConfigs, EveryConfigLoadsAndValidates) {
  const fs::path dir = t6::testing::source_dir() / "configs";
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(dir))
    if (item.path().extension() == ".toml") files.push_back(item.path());
  ASSERT_FALSE(files.empty()) << "no configs in " << dir;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    RunConfig config;
    ASSERT_NO_THROW(config = load_run_config(file.string())) << error_of([&] { load_run_config(file.string()); });
    EXPECT_NO_THROW(config.validate());

    // A first-line claim such as "124.3M parameters" must be what the config builds.
    std::ifstream stream(file);
    std::string first_line;
    std::getline(stream, first_line);
    std::smatch claim;
    if (std::regex_search(first_line, claim, std::regex(R"(([0-9]+\.[0-9])M parameters)"))) {
      EXPECT_EQ(one_decimal_millions(config.model.parameter_count()), claim[1].str()) << first_line;
    }
  }
}

// docs/MODEL.md 3.1: MLA small is H 13, Dn 64, Dr 32, Cq 512, Ckv 256, Dv 64, 123.09M parameters.
TEST(ShippedConfigs, MlaSmallHasThePapersLatentSettings) {
  const RunConfig config = load_run_config((t6::testing::source_dir() / "configs" / "mla-small.toml").string());
  const ModelConfig& m = config.model;
  EXPECT_EQ(m.kind, ModelKind::llama_mla);
  EXPECT_EQ(m.qk_rope_head_dim, 32);
  EXPECT_EQ(m.q_lora_rank, 512);
  EXPECT_EQ(m.kv_lora_rank, 256);
  EXPECT_EQ(m.v_head_dim, 64);
  char count[32];
  std::snprintf(count, sizeof count, "%.2f", double(m.parameter_count()) / 1e6);
  EXPECT_STREQ(count, "123.09");
}

TEST(ShippedConfigs, PaperConfigsMatchTheSpecTablesAndRecipe) {
  for (const auto& [name, paper] : kPaperConfigs) {
    SCOPED_TRACE(name);
    const fs::path file = t6::testing::source_dir() / "configs" / name;
    ASSERT_TRUE(fs::exists(file)) << file;
    const RunConfig config = load_run_config(file.string());
    const ModelConfig& m = config.model;
    EXPECT_EQ(m.kind, paper.kind);
    EXPECT_EQ(m.n_layer, paper.L);
    EXPECT_EQ(m.n_embd, paper.d);
    EXPECT_EQ(m.n_head, paper.H);
    EXPECT_EQ(m.head_dim, paper.D);
    if (paper.Rq) { EXPECT_EQ(m.q_rank, paper.Rq); }
    if (paper.R) { EXPECT_EQ(m.rank, paper.R); }
    if (paper.kind == ModelKind::llama_gqa) { EXPECT_EQ(m.group_size, paper.group); }
    EXPECT_EQ(m.mlp_hidden(), paper.hidden);
    EXPECT_EQ(m.vocab_size, 50304);
    if (!paper.params.empty()) { EXPECT_EQ(one_decimal_millions(m.parameter_count()), paper.params); }

    // Section 4: 480 × 1024 tokens per step, 100k steps, warmup 2000, cosine to min_lr at the end,
    // AdamW (0.9, 0.95), eps 1e-8, weight decay 0.1, clip 1.0.
    const TrainConfig& t = config.train;
    EXPECT_EQ(t.seq_len, 1024);
    EXPECT_EQ(t.global_batch_size, 480);
    EXPECT_EQ(t.max_steps, 100000);
    EXPECT_EQ(config.lr_schedule().lr_decay_steps, 100000);
    EXPECT_EQ(t.warmup_steps, 2000);
    EXPECT_DOUBLE_EQ(t.lr, paper.lr);
    EXPECT_DOUBLE_EQ(t.min_lr, paper.min_lr);
    EXPECT_DOUBLE_EQ(t.beta1, 0.9);
    EXPECT_DOUBLE_EQ(t.beta2, 0.95);
    EXPECT_DOUBLE_EQ(t.eps, 1e-8);
    EXPECT_DOUBLE_EQ(t.weight_decay, 0.1);
    EXPECT_DOUBLE_EQ(t.grad_clip, 1.0);
  }
}

// The paper compares models of one size at (nearly) equal parameter counts: its head counts make MHA,
// GQA and TPA-KVonly match T6 of that size (docs/MODEL.md 3) within 0.5%. MLA's latent widths (Cq 1024,
// Ckv 512) make it larger (418.0M, 909.3M, 1810.1M), as in the official configs.
TEST(ShippedConfigs, BaselinesMatchT6OfTheirSizeInParameters) {
  for (const char* size : {"medium", "large", "xl"}) {
    const auto count = [&](const std::string& family) {
      return double(load_run_config((t6::testing::source_dir() / "configs" / (family + "-" + size + ".toml")).string())
                        .model.parameter_count());
    };
    const double t6 = count("t6");
    for (const char* family : {"mha", "gqa", "kvonly"}) {
      SCOPED_TRACE(std::string(family) + "-" + size);
      EXPECT_NEAR(count(family) / t6, 1.0, 0.005);
    }
    EXPECT_GT(count("mla") / t6, 1.15) << size;
  }
}

// ---- --set overrides ---------------------------------------------------------------------------

TEST(Overrides, SetValuesOfEveryType) {
  const RunConfig config = load_base({
      "train.lr=3e-4",               // float
      "train.max_steps=5000",        // integer
      "train.grad_clip=2",           // an integer where a float is expected
      "parallel.zero1=true",         // bool
      "data.path=/x/y",              // bare string
      "checkpoint.resume=\"auto\"",  // quoted string
      "model.kind=llama_mha",        // bare enum value
      "model.n_head=4",
  });
  EXPECT_DOUBLE_EQ(config.train.lr, 3e-4);
  EXPECT_EQ(config.train.max_steps, 5000);
  EXPECT_DOUBLE_EQ(config.train.grad_clip, 2.0);
  EXPECT_TRUE(config.parallel.zero1);
  EXPECT_EQ(config.data.path, "/x/y");
  EXPECT_EQ(config.checkpoint.resume, "auto");
  EXPECT_EQ(config.model.kind, ModelKind::llama_mha);
  EXPECT_EQ(config.model.n_head, 4);
  // Untouched keys keep the file's values.
  EXPECT_DOUBLE_EQ(config.train.min_lr, 3e-5);
  EXPECT_EQ(config.model.n_embd, 64);
}

TEST(Overrides, QuotedStringsKeepSpacesAndTheLastSetWins) {
  const RunConfig config = load_base({"data.path=\"/data with spaces/x\"", "train.lr=1e-3", "train.lr=2e-4", "parallel.zero1=false"});
  EXPECT_EQ(config.data.path, "/data with spaces/x");
  EXPECT_DOUBLE_EQ(config.train.lr, 2e-4);
  EXPECT_FALSE(config.parallel.zero1);
}

TEST(Overrides, AreValidatedAfterAllAreApplied) {
  // lr below the file's min_lr is fine once min_lr is lowered too: validation sees the final config.
  const RunConfig config = load_base({"train.lr=1e-5", "train.min_lr=1e-6"});
  EXPECT_DOUBLE_EQ(config.train.lr, 1e-5);
}

// ---- errors ------------------------------------------------------------------------------------

TEST(ConfigErrors, UnknownSectionNamesFileAndSection) {
  const LoadError error = load_error("\n[optimizer]\nlr = 1.0\n");
  expect_mentions(error.message, {error.path.string(), "optimizer"});
  expect_mentions(load_error("", {"optimizer.lr=1.0"}).message, {"--set", "optimizer.lr"});
}

TEST(ConfigErrors, EmptyUnknownSectionIsRefused) {
  // "[chekpoint]" with its keys commented out is still a typo worth reporting.
  const LoadError error = load_error("\n[optimizer]\n");
  expect_mentions(error.message, {error.path.string(), "optimizer"});
}

TEST(ConfigErrors, UnknownKeyNamesFileAndKey) {
  // A misspelt key must not be ignored silently: the run would go on with the default.
  const LoadError error = load_error("\n[eval]\nintervall = 5\n");
  expect_mentions(error.message, {error.path.string(), "eval.intervall"});
  expect_mentions(load_error("", {"train.learning_rate=3e-4"}).message, {"--set", "train.learning_rate"});
}

TEST(ConfigErrors, UnknownKeyNamesTheKnownKeyItMostLikelyMeant) {
  expect_mentions(load_error("\n[eval]\nintervall = 5\n").message, {"did you mean 'eval.interval'?"});
  expect_mentions(load_error("", {"train.tp=2"}).message, {"did you mean 'parallel.tp'?"});  // the wrong section
  expect_mentions(load_error("", {"train.micro_batch=4"}).message, {"did you mean 'train.micro_batch_size'?"});
  const std::string far = load_error("", {"train.frobnicate=1"}).message;
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << "no guess for a key that is like none: " << far;
}

TEST(ConfigErrors, WrongTypeNamesFileAndKey) {
  const LoadError error = load_error("\n[log]\ninterval = \"ten\"\n");
  expect_mentions(error.message, {error.path.string(), "log.interval", "integer"});
  expect_mentions(load_error("", {"train.max_steps=\"ten\""}).message, {"--set", "train.max_steps", "integer"});
  expect_mentions(load_error("", {"train.max_steps=ten"}).message, {"--set", "train.max_steps", "integer"});
  expect_mentions(load_error("", {"train.max_steps=2.5"}).message, {"--set", "train.max_steps", "integer"});
  // A TOML float is not an integer, even when it has no fractional part.
  expect_mentions(load_error("", {"train.max_steps=3.0"}).message, {"--set", "train.max_steps", "integer"});
  expect_mentions(load_error("", {"train.lr=fast"}).message, {"--set", "train.lr", "number"});
  expect_mentions(load_error("", {"parallel.zero1=yes"}).message, {"--set", "parallel.zero1", "true or false"});
  expect_mentions(load_error("", {"data.path=3"}).message, {"--set", "data.path", "string"});
}

TEST(ConfigErrors, MalformedSetSyntaxIsRefused) {
  expect_mentions(load_error("", {"train.lr"}).message, {"--set", "train.lr", "section.key=value"});
  expect_mentions(load_error("", {"lr=3e-4"}).message, {"--set", "lr=3e-4"});
}

TEST(ConfigErrors, MalformedTomlNamesTheLine) {
  // Line 3 of this file is broken.
  const fs::path path = write_toml("[train]\nlr = 6e-4\nmin_lr = = 3e-5\n");
  expect_mentions(error_of([&] { load_run_config(path.string()); }), {path.string() + ":3"});
}

TEST(ConfigErrors, MissingFileIsNamed) {
  const fs::path path = t6::testing::scratch_dir("run_config") / "absent.toml";
  expect_mentions(error_of([&] { load_run_config(path.string()); }), {path.string()});
}

TEST(ConfigErrors, ImpossibleValuesNameFileAndKey) {
  struct Case {
    std::vector<std::string> overrides;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {{"train.min_lr=1e-3"}, {"train.min_lr", "train.lr"}},
      {{"train.lr_decay_steps=50"}, {"train.lr_decay_steps", "train.warmup_steps"}},
      {{"train.max_skipped_steps=0"}, {"train.max_skipped_steps"}},
      {{"parallel.timeout_s=0"}, {"parallel.timeout_s"}},
      {{"parallel.bucket_mib=0"}, {"parallel.bucket_mib", "(0, 4096]"}},
      {{"checkpoint.resume=sometimes"}, {"checkpoint.resume", "sometimes"}},
      {{"model.head_dim=15"}, {"model.head_dim"}},
      {{"model.kind=llama_mla", "model.qk_rope_head_dim=7"}, {"model.qk_rope_head_dim"}},
      {{"model.kind=llama_mla", "model.kv_lora_rank=0"}, {"model.kv_lora_rank"}},
      {{"model.kind=llama_mla", "model.q_lora_rank=0"}, {"model.q_lora_rank"}},
      {{"model.kind=llama_mla", "model.v_head_dim=-1"}, {"model.v_head_dim"}},
      {{"parallel.tp=0"}, {"parallel.tp"}},
      {{"train.eps=0"}, {"train.eps"}},
      {{"train.beta2=1"}, {"train.beta2"}},
      // Sizes far beyond any model are refused before anything is built or allocated.
      {{"model.n_layer=99999999999"}, {"model.n_layer", "[1, 4096]", "99999999999"}},
      {{"model.n_embd=4000000000"}, {"model.n_embd", "[2, 131072]"}},
      {{"model.vocab_size=99999999999"}, {"model.vocab_size", "[1, 4194304]"}},
      {{"train.seq_len=99999999999"}, {"train.seq_len", "[1, 4194304]"}},
  };
  for (const Case& test_case : cases) {
    SCOPED_TRACE(test_case.overrides[0]);
    const LoadError error = load_error("", test_case.overrides);
    expect_mentions(error.message, {error.path.string()});
    expect_mentions(error.message, test_case.mentions);
  }
  // An unknown model kind is refused while the value is read, so the message names its source.
  expect_mentions(load_error("", {"model.kind=T7"}).message, {"--set model.kind=T7", "model.kind", "T7"});
  const fs::path kind_file = write_toml(std::string(kBaseToml).replace(std::string(kBaseToml).find("\"T6\""), 4, "\"T7\""));
  expect_mentions(error_of([&] { load_run_config(kind_file.string()); }), {kind_file.string(), "model.kind", "T7"});

  // The same check for a value written in the file itself.
  const LoadError in_file = load_error("\n[checkpoint]\nresume = \"sometimes\"\n");
  expect_mentions(in_file.message, {in_file.path.string(), "checkpoint.resume"});
}

TEST(ConfigErrors, NonFiniteNumbersAreRefusedWhereverTheyAreGiven) {
  // TOML reads inf and nan as floats. An infinite train.lr passed every range check and the warmup's
  // 0 · inf turned the weights into NaN at step 1; an infinite (or astronomically large)
  // parallel.timeout_s overflowed the deadline clock, so every collective of a healthy job timed out.
  for (const ConfigKey<RunConfig>& key : run_config_keys()) {
    if (key.type != ConfigType::real) continue;
    for (const std::string value : {"inf", "-inf", "nan", "+inf"}) {
      SCOPED_TRACE(key.name + "=" + value);
      const std::string set = key.name + "=" + value;
      expect_mentions(load_error("", {set}).message, {"--set " + set, key.name, "finite"});
    }
  }
  const LoadError in_file = load_error("\n[log]\npeak_flops = inf\n");
  expect_mentions(in_file.message, {in_file.path.string(), "log.peak_flops", "finite", "inf"});
  expect_mentions(load_error("", {"parallel.timeout_s=1e300"}).message, {"parallel.timeout_s", "(0, 1e+6]", "1e+300"});
  EXPECT_DOUBLE_EQ(load_base({"parallel.timeout_s=1e6"}).parallel.timeout_s, 1e6);
}

TEST(ConfigErrors, IntegerThatDoesNotFitItsFieldIsRefusedNotNarrowed) {
  struct Narrow {
    int32_t count = 0;
  };
  const t6::ConfigKey<Narrow> key =
      t6::config_key<Narrow>("test.count", t6::at_least(0), "a 32-bit field", [](auto& c) -> auto& { return c.count; });
  Narrow narrow;
  expect_mentions(error_of([&] { key.set(narrow, int64_t(1) << 31); }), {"test.count", "2147483647", "2147483648"});
  EXPECT_EQ(narrow.count, 0);  // not -2147483648
  key.set(narrow, int64_t(7));
  EXPECT_EQ(narrow.count, 7);
}

// ---- lr schedule and JSON ----------------------------------------------------------------------

TEST(RunConfigSchedule, LrDecayStepsZeroMeansMaxSteps) {
  const RunConfig by_default = load_base({});
  EXPECT_EQ(by_default.train.lr_decay_steps, 0);
  const LrSchedule schedule = by_default.lr_schedule();
  EXPECT_EQ(schedule.lr_decay_steps, 1000);
  EXPECT_EQ(schedule.warmup_steps, 100);
  EXPECT_DOUBLE_EQ(schedule.lr, 6e-4);
  EXPECT_DOUBLE_EQ(schedule.min_lr, 3e-5);
  EXPECT_DOUBLE_EQ(schedule.at(1000), 3e-5);

  const RunConfig explicit_horizon = load_base({"train.lr_decay_steps=700"});
  EXPECT_EQ(explicit_horizon.lr_schedule().lr_decay_steps, 700);
  // An explicit horizon does not move when max_steps is raised (resume with more steps).
  const RunConfig raised = load_base({"train.lr_decay_steps=700", "train.max_steps=9000"});
  EXPECT_EQ(raised.lr_schedule().lr_decay_steps, 700);
}

TEST(RunConfigSchedule, ShortRunOfAnyConfigDecaysAfterTheWarmup) {
  // max_steps below the warmup (100): the default horizon is the warmup, so the run is valid and
  // its whole curve is the warmup ramp.
  const RunConfig short_run = load_base({"train.max_steps=2"});
  EXPECT_EQ(short_run.lr_schedule().lr_decay_steps, 100);
  EXPECT_DOUBLE_EQ(short_run.lr_schedule().at(2), 6e-4 * 2 / 100);
}

TEST(RunConfigJson, RoundTripKeepsEveryKey) {
  // Non-default values in every section, so a key dropped by to_json or from_json shows.
  const RunConfig original = load_base({
      "model.kind=llama_gqa", "model.group_size=3", "train.seed=42", "train.seq_len=48", "train.micro_batch_size=3",
      "train.global_batch_size=12", "train.lr_decay_steps=900", "train.weight_decay=0.05", "train.grad_clip=0.5",
      "train.beta1=0.8", "train.beta2=0.9", "train.eps=1e-6", "data.path=/corpus", "parallel.tp=2", "parallel.zero1=true",
      "parallel.threads=3", "parallel.timeout_s=2.5", "train.max_skipped_steps=2", "eval.interval=7", "eval.batches=2", "checkpoint.interval=11", "checkpoint.keep=0",
      "checkpoint.resume=auto", "log.interval=5",
  });
  const nlohmann::json json = original.to_json();
  for (const char* section : {"model", "train", "data", "parallel", "eval", "checkpoint", "log"})
    EXPECT_TRUE(json.contains(section)) << section;
  EXPECT_EQ(json["model"]["kind"], "llama_gqa");
  EXPECT_EQ(json["train"]["lr_decay_steps"], 900);
  EXPECT_EQ(json["parallel"]["zero1"], true);

  const RunConfig restored = RunConfig::from_json(json);
  EXPECT_EQ(restored.to_json(), json);
  EXPECT_EQ(restored.model.group_size, 3);
  EXPECT_EQ(restored.train.seed, 42u);
  EXPECT_DOUBLE_EQ(restored.train.eps, 1e-6);
  EXPECT_EQ(restored.checkpoint.resume, "auto");
  // Through text too, as the manifest stores it.
  EXPECT_EQ(RunConfig::from_json(nlohmann::json::parse(json.dump())).to_json(), json);
}

TEST(RunConfigJson, FromJsonRefusesUnknownKeysAndBadValues) {
  nlohmann::json json = load_base({}).to_json();
  json["train"]["learning_rate"] = 1.0;
  expect_mentions(error_of([&] { RunConfig::from_json(json); }), {"train.learning_rate"});

  nlohmann::json bad = load_base({}).to_json();
  bad["checkpoint"]["resume"] = "sometimes";
  expect_mentions(error_of([&] { RunConfig::from_json(bad); }), {"checkpoint.resume"});
}
