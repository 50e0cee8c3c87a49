// A settable configuration key as one row of a table: its name, type, accepted values, meaning and
// where it lives in a config struct. The run config (train/run_config.h) parses, validates, prints
// (t6_pretrain --print-config) and documents (docs/CONFIG.md) every key from such rows, so the four
// cannot disagree. A key's default is the value of its field in a default-constructed struct.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/error.h"

namespace t6 {

using ConfigValue = std::variant<bool, int64_t, double, std::string>;
enum class ConfigType { boolean, integer, real, string };

const char* config_type_name(ConfigType type);  // "bool", "integer", "float", "string"
// TOML syntax that reads back to the same value: 12, 0.0006, 1.0, true, "a \"b\"".
std::string format_config_value(const ConfigValue& value);

// What a key accepts beyond its type: an interval for numbers, a list of words for strings.
struct ValueRange {
  std::optional<double> min, max;
  bool min_open = false, max_open = false;
  std::vector<std::string> choices;

  bool contains(const ConfigValue& value) const;
  std::string describe() const;  // ">= 1", "> 0", "in [0, 1)", "one of \"never\", \"auto\"", "any"
};
ValueRange any_value();
ValueRange at_least(double min);
ValueRange above(double min);
ValueRange above_up_to(double min, double max);       // (min, max]
ValueRange from_up_to_below(double min, double max);  // [min, max)
ValueRange closed_range(double min, double max);      // [min, max]
ValueRange one_of(std::vector<std::string> choices);

template <class Config>
struct ConfigKey {
  std::string name;  // "section.key"
  ConfigType type;
  ValueRange range;
  std::string meaning;
  std::function<ConfigValue(const Config&)> get;
  std::function<void(Config&, const ConfigValue&)> set;  // the value holds this key's type

  std::string section() const { return name.substr(0, name.find('.')); }
  std::string key() const { return name.substr(name.find('.') + 1); }
  // Throws "NAME must be RANGE, got VALUE".
  void check_range(const Config& config) const {
    const ConfigValue value = get(config);
    T6_CHECK(range.contains(value), name, " must be ", range.describe(), ", got ", format_config_value(value));
  }
};

// A row for a plain field: `field` maps a config (const or not) to a reference to the field, whose
// C++ type (bool, an integer, a floating-point type or std::string) gives the key's type.
//   config_key<RunConfig>("train.lr", at_least(0), "peak learning rate", [](auto& c) -> auto& { return c.train.lr; })
template <class Config, class Field>
ConfigKey<Config> config_key(std::string name, ValueRange range, std::string meaning, Field field) {
  using Value = std::remove_cvref_t<decltype(field(std::declval<Config&>()))>;
  ConfigType type;
  if constexpr (std::is_same_v<Value, bool>) type = ConfigType::boolean;
  else if constexpr (std::is_integral_v<Value>) type = ConfigType::integer;
  else if constexpr (std::is_floating_point_v<Value>) type = ConfigType::real;
  else type = ConfigType::string;
  const std::string key_name = name;  // for the setter's message; `name` itself moves into the row
  return {std::move(name), type, std::move(range), std::move(meaning),
          [field](const Config& config) -> ConfigValue {
            const Value& value = field(config);
            if constexpr (std::is_same_v<Value, bool> || std::is_same_v<Value, std::string>) return value;
            else if constexpr (std::is_integral_v<Value>) return int64_t(value);
            else return double(value);
          },
          [field, key_name](Config& config, const ConfigValue& value) {
            Value& target = field(config);
            if constexpr (std::is_same_v<Value, bool> || std::is_same_v<Value, std::string>) target = std::get<Value>(value);
            else if constexpr (std::is_integral_v<Value>) {
              // Checked here, before the value is narrowed: once stored it could no longer be told apart.
              const int64_t integer = std::get<int64_t>(value);
              T6_CHECK(std::in_range<Value>(integer), key_name, " must fit in [", std::numeric_limits<Value>::min(), ", ",
                       std::numeric_limits<Value>::max(), "], got ", integer);
              target = Value(integer);
            }
            else target = Value(std::get<double>(value));
          }};
}

// For an unknown key: " (did you mean 'train.lr'?)" naming the known key closest to `name` (a key
// of the same name in another section, or one a few typed letters away), or "" when none is close.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& known_names);

}  // namespace t6
