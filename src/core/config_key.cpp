#include "core/config_key.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace t6 {

namespace {

std::string format_real(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;  // shortest text that reads back exactly
  std::string formatted(text, end);
  // "2e-04" → "2e-4": the same value, as people write it.
  if (const size_t exponent = formatted.find('e'); exponent != std::string::npos) {
    size_t digits = exponent + 1 + (formatted[exponent + 1] == '-' || formatted[exponent + 1] == '+');
    while (digits + 1 < formatted.size() && formatted[digits] == '0') formatted.erase(digits, 1);
  }
  // A TOML float needs a fraction or an exponent; "3" would read back as an integer.
  if (formatted.find_first_of(".e") == std::string::npos) formatted += ".0";
  return formatted;
}

std::string quote(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", unsigned(static_cast<unsigned char>(c)));
      quoted += escape;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

std::string format_bound(double bound) {
  std::string text = format_real(bound);
  if (text.size() > 2 && text.ends_with(".0")) text.resize(text.size() - 2);
  return text;
}

}  // namespace

const char* config_type_name(ConfigType type) {
  switch (type) {
    case ConfigType::boolean: return "bool";
    case ConfigType::integer: return "integer";
    case ConfigType::real: return "float";
    case ConfigType::string: return "string";
  }
  return "?";
}

std::string format_config_value(const ConfigValue& value) {
  if (const bool* flag = std::get_if<bool>(&value)) return *flag ? "true" : "false";
  if (const int64_t* integer = std::get_if<int64_t>(&value)) return std::to_string(*integer);
  if (const double* real = std::get_if<double>(&value)) return format_real(*real);
  return quote(std::get<std::string>(value));
}

bool ValueRange::contains(const ConfigValue& value) const {
  if (const std::string* text = std::get_if<std::string>(&value))
    return choices.empty() || std::find(choices.begin(), choices.end(), *text) != choices.end();
  double number = 0;
  if (const int64_t* integer = std::get_if<int64_t>(&value)) number = double(*integer);
  else if (const double* real = std::get_if<double>(&value)) number = *real;
  else return true;  // a bool has no range
  if (std::isnan(number)) return !min && !max;
  if (min && (min_open ? number <= *min : number < *min)) return false;
  if (max && (max_open ? number >= *max : number > *max)) return false;
  return true;
}

std::string ValueRange::describe() const {
  if (!choices.empty()) {
    std::string text = "one of ";
    for (size_t i = 0; i < choices.size(); ++i) text += (i ? ", " : "") + quote(choices[i]);
    return text;
  }
  if (min && max)
    return str("in ", min_open ? "(" : "[", format_bound(*min), ", ", format_bound(*max), max_open ? ")" : "]");
  if (min) return str(min_open ? "> " : ">= ", format_bound(*min));
  if (max) return str(max_open ? "< " : "<= ", format_bound(*max));
  return "any";
}

ValueRange any_value() { return {}; }
ValueRange at_least(double min) { return {min, std::nullopt, false, false, {}}; }
ValueRange above(double min) { return {min, std::nullopt, true, false, {}}; }
ValueRange above_up_to(double min, double max) { return {min, max, true, false, {}}; }
ValueRange from_up_to_below(double min, double max) { return {min, max, false, true, {}}; }
ValueRange closed_range(double min, double max) { return {min, max, false, false, {}}; }
ValueRange one_of(std::vector<std::string> choices) { return {std::nullopt, std::nullopt, false, false, std::move(choices)}; }

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string after_dot(const std::string& name) { return name.substr(name.find('.') + 1); }

}  // namespace

std::string did_you_mean(const std::string& name, const std::vector<std::string>& known_names) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;  // farther is a guess, not a typo
  for (const std::string& known : known_names) {
    if (after_dot(known) == after_dot(name)) return " (did you mean '" + known + "'?)";  // the wrong section
    const size_t distance = edit_distance(name, known);
    if (distance < best_distance) best = known, best_distance = distance;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

}  // namespace t6
