// Token checking for IDENTIFY. A node holds one TokenChecker, called from its
// shard threads concurrently: implementations must be thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hearth {

class TokenChecker {
 public:
  virtual ~TokenChecker() = default;
  // nullopt when the token is valid for the user; otherwise the reason sent to the client.
  virtual std::optional<std::string> check(std::uint64_t user, std::string_view token) const = 0;
  virtual std::string describe() const = 0;
};

// Development mode: every token is accepted (and the node logs that it is so).
std::unique_ptr<TokenChecker> make_dev_token_checker();

// Tokens from a file of lines "<user id> <token>" ('#' starts a comment).
// Throws std::runtime_error naming the file and line on a bad file.
std::unique_ptr<TokenChecker> make_file_token_checker(const std::string& path);

}  // namespace hearth
