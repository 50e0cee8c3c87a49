// Checking the errors t6 raises: that an action throws a t6::Error, and that its one-line message
// names what the user needs (the file, the key, the tensor).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace t6::testing {

// The message of the t6::Error that `action` throws; a test failure (and "") if it throws nothing
// or another exception.
std::string error_of(const std::function<void()>& action);

// Checks that `message` contains every one of `parts`.
void expect_mentions(const std::string& message, const std::vector<std::string>& parts);

}  // namespace t6::testing
