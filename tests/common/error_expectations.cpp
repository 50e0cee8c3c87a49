#include "common/error_expectations.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace t6::testing {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "expected a t6::Error, got another exception: " << other.what();
    return "";
  }
  ADD_FAILURE() << "expected a t6::Error, nothing was thrown";
  return "";
}

void expect_mentions(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << "message does not mention '" << part << "':\n  " << message;
}

}  // namespace t6::testing
