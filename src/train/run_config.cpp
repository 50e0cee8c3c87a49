#include "train/run_config.h"

#include <algorithm>
#include <functional>
#include <toml++/toml.h>

#include "core/error.h"

namespace t6 {

namespace {

// One settable key: its name and how to read it from a TOML node and write it to JSON.
struct Key {
  std::string section, name;
  std::function<void(const toml::node&, const std::string& where)> assign;
  std::function<nlohmann::json()> value;
};

template <class Integer>
Key integer_key(const char* section, const char* name, Integer* target) {
  return {section, name,
          [=](const toml::node& node, const std::string& where) {
            auto value = node.value<int64_t>();
            T6_CHECK(node.is_integer() && value, where, ": ", section, ".", name, " must be an integer");
            *target = Integer(*value);
          },
          [=] { return nlohmann::json(*target); }};
}

Key real_key(const char* section, const char* name, double* target) {
  return {section, name,
          [=](const toml::node& node, const std::string& where) {
            auto value = node.value<double>();
            T6_CHECK((node.is_floating_point() || node.is_integer()) && value, where, ": ", section, ".", name, " must be a number");
            *target = *value;
          },
          [=] { return nlohmann::json(*target); }};
}

Key bool_key(const char* section, const char* name, bool* target) {
  return {section, name,
          [=](const toml::node& node, const std::string& where) {
            T6_CHECK(node.is_boolean(), where, ": ", section, ".", name, " must be true or false");
            *target = *node.value<bool>();
          },
          [=] { return nlohmann::json(*target); }};
}

Key string_key(const char* section, const char* name, std::string* target) {
  return {section, name,
          [=](const toml::node& node, const std::string& where) {
            T6_CHECK(node.is_string(), where, ": ", section, ".", name, " must be a string");
            *target = *node.value<std::string>();
          },
          [=] { return nlohmann::json(*target); }};
}

// Every key of a run config, bound to `config`'s fields.
std::vector<Key> keys_of(RunConfig& config) {
  ModelConfig& m = config.model;
  TrainConfig& t = config.train;
  return {
      {"model", "kind",
       [&m](const toml::node& node, const std::string& where) {
         T6_CHECK(node.is_string(), where, ": model.kind must be a string");
         try {
           m.kind = model_kind_from_name(*node.value<std::string>());
         } catch (const Error& error) {
           fail(str(where, ": ", error.what()));
         }
       },
       [&m] { return nlohmann::json(model_kind_name(m.kind)); }},
      integer_key("model", "n_layer", &m.n_layer), integer_key("model", "n_embd", &m.n_embd),
      integer_key("model", "n_head", &m.n_head), integer_key("model", "head_dim", &m.head_dim),
      integer_key("model", "q_rank", &m.q_rank), integer_key("model", "rank", &m.rank),
      integer_key("model", "group_size", &m.group_size), integer_key("model", "vocab_size", &m.vocab_size),
      integer_key("train", "seed", &t.seed), integer_key("train", "seq_len", &t.seq_len),
      integer_key("train", "micro_batch_size", &t.micro_batch_size),
      integer_key("train", "global_batch_size", &t.global_batch_size), integer_key("train", "max_steps", &t.max_steps),
      real_key("train", "lr", &t.lr), real_key("train", "min_lr", &t.min_lr),
      integer_key("train", "warmup_steps", &t.warmup_steps), integer_key("train", "lr_decay_steps", &t.lr_decay_steps),
      real_key("train", "weight_decay", &t.weight_decay), real_key("train", "grad_clip", &t.grad_clip),
      real_key("train", "beta1", &t.beta1), real_key("train", "beta2", &t.beta2), real_key("train", "eps", &t.eps),
      string_key("data", "path", &config.data.path),
      integer_key("parallel", "tp", &config.parallel.tp), bool_key("parallel", "zero1", &config.parallel.zero1),
      integer_key("parallel", "threads", &config.parallel.threads),
      integer_key("eval", "interval", &config.eval.interval), integer_key("eval", "batches", &config.eval.batches),
      integer_key("checkpoint", "interval", &config.checkpoint.interval),
      integer_key("checkpoint", "keep", &config.checkpoint.keep),
      string_key("checkpoint", "resume", &config.checkpoint.resume),
      integer_key("log", "interval", &config.log.interval),
  };
}

Key& find_key(std::vector<Key>& keys, const std::string& section, const std::string& name, const std::string& where) {
  for (Key& key : keys)
    if (key.section == section && key.name == name) return key;
  fail(str(where, ": unknown key '", section, section.empty() ? "" : ".", name, "'"));
}

void apply_table(std::vector<Key>& keys, const toml::table& root, const std::string& where) {
  for (const auto& [section_name, section] : root) {
    const std::string section_key(section_name.str());
    T6_CHECK(section.is_table(), where, ": '", section_key, "' must be a [section]");
    // Checked here too, so that an empty misspelt section is not ignored.
    T6_CHECK(std::any_of(keys.begin(), keys.end(), [&](const Key& key) { return key.section == section_key; }), where,
             ": unknown section [", section_key, "]");
    for (const auto& [name, node] : *section.as_table()) find_key(keys, section_key, std::string(name.str()), where).assign(node, where);
  }
}

// "train.lr=3e-4" → the key and a TOML node holding the value (a bare word becomes a string).
void apply_override(std::vector<Key>& keys, const std::string& text) {
  const std::string where = str("--set ", text);
  const size_t equals = text.find('='), dot = text.find('.');
  T6_CHECK(equals != std::string::npos && dot != std::string::npos && dot < equals, where,
           ": expected section.key=value");
  const std::string section = text.substr(0, dot), name = text.substr(dot + 1, equals - dot - 1);
  const std::string value = text.substr(equals + 1);
  Key& key = find_key(keys, section, name, where);
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"value", value}};  // an unquoted string such as data.path=/data/x
  }
  key.assign(*parsed.get("value"), where);
}

}  // namespace

LrSchedule RunConfig::lr_schedule() const {
  return {train.lr, train.min_lr, train.warmup_steps, train.lr_decay_steps > 0 ? train.lr_decay_steps : train.max_steps};
}

void RunConfig::validate() const {
  model.validate();
  T6_CHECK(train.seq_len >= 1, "train.seq_len must be positive, got ", train.seq_len);
  T6_CHECK(train.micro_batch_size >= 1, "train.micro_batch_size must be positive, got ", train.micro_batch_size);
  T6_CHECK(train.global_batch_size >= 1, "train.global_batch_size must be positive, got ", train.global_batch_size);
  T6_CHECK(train.max_steps >= 1, "train.max_steps must be positive, got ", train.max_steps);
  T6_CHECK(train.lr >= 0 && train.min_lr >= 0 && train.min_lr <= train.lr, "train.min_lr (", train.min_lr,
           ") must be between 0 and train.lr (", train.lr, ")");
  T6_CHECK(train.warmup_steps >= 0, "train.warmup_steps must not be negative");
  T6_CHECK(train.lr_decay_steps >= 0, "train.lr_decay_steps must not be negative");
  T6_CHECK(lr_schedule().lr_decay_steps >= train.warmup_steps, "train.lr_decay_steps (", lr_schedule().lr_decay_steps,
           ") must not be below train.warmup_steps (", train.warmup_steps, ")");
  T6_CHECK(train.weight_decay >= 0, "train.weight_decay must not be negative");
  T6_CHECK(train.grad_clip >= 0, "train.grad_clip must not be negative (0 disables clipping)");
  T6_CHECK(train.beta1 >= 0 && train.beta1 < 1 && train.beta2 >= 0 && train.beta2 < 1, "train.beta1 and train.beta2 must be in [0, 1)");
  T6_CHECK(train.eps > 0, "train.eps must be positive");
  T6_CHECK(parallel.tp >= 1, "parallel.tp must be at least 1, got ", parallel.tp);
  T6_CHECK(parallel.threads >= 0, "parallel.threads must not be negative");
  T6_CHECK(eval.interval >= 0 && eval.batches >= 1, "eval.interval must not be negative and eval.batches must be positive");
  T6_CHECK(checkpoint.interval >= 0 && checkpoint.keep >= 0, "checkpoint.interval and checkpoint.keep must not be negative");
  T6_CHECK(checkpoint.resume == "never" || checkpoint.resume == "auto", "checkpoint.resume must be \"never\" or \"auto\", got \"",
           checkpoint.resume, "\"");
  T6_CHECK(log.interval >= 1, "log.interval must be at least 1");
}

nlohmann::json RunConfig::to_json() const {
  RunConfig copy = *this;
  nlohmann::json json = nlohmann::json::object();
  for (const Key& key : keys_of(copy)) json[key.section][key.name] = key.value();
  return json;
}

RunConfig RunConfig::from_json(const nlohmann::json& json) {
  RunConfig config;
  std::vector<Key> keys = keys_of(config);
  T6_CHECK(json.is_object(), "run config: expected a JSON object of sections");
  for (const auto& [section, entries] : json.items()) {
    T6_CHECK(entries.is_object(), "run config: section '", section, "' is not an object");
    for (const auto& [name, value] : entries.items()) {
      toml::table holder;
      if (value.is_boolean()) holder.insert("v", value.get<bool>());
      else if (value.is_number_integer()) holder.insert("v", value.get<int64_t>());
      else if (value.is_number()) holder.insert("v", value.get<double>());
      else if (value.is_string()) holder.insert("v", value.get<std::string>());
      else fail(str("run config: ", section, ".", name, " has an unsupported JSON type"));
      find_key(keys, section, name, "run config").assign(*holder.get("v"), "run config");
    }
  }
  config.validate();
  return config;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig config;
  std::vector<Key> keys = keys_of(config);
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    fail(str(path, ":", error.source().begin.line, ": ", error.description()));
  }
  apply_table(keys, root, path);
  for (const std::string& text : overrides) apply_override(keys, text);
  try {
    config.validate();
  } catch (const Error& error) {
    fail(str(path, ": ", error.what()));
  }
  return config;
}

}  // namespace t6
