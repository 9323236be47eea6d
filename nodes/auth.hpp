// Token checking for IDENTIFY. A node holds one TokenChecker, called from its
// shard threads concurrently: implementations must be thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth {

// The guilds a token lets its user subscribe to: every guild, or a sorted
// list of closed ranges [first, last].
struct GuildGrant {
  bool all = true;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;

  bool allows(std::uint64_t guild) const;
  // "all", or "1,5-9".
  std::string describe() const;
};

class TokenChecker {
 public:
  virtual ~TokenChecker() = default;
  // nullopt when the token is valid for the user; otherwise the reason sent
  // to the client. On success `grant` (when not null) receives the guilds the
  // token allows. Compares secrets in constant time.
  virtual std::optional<std::string> check(std::uint64_t user, std::string_view token,
                                           GuildGrant* grant = nullptr) const = 0;
  virtual std::string describe() const = 0;
};

// Development mode: every token is accepted (and the node logs that it is so).
std::unique_ptr<TokenChecker> make_dev_token_checker();

// Tokens from a file of lines "<user id> <token>" ('#' starts a comment).
// Throws std::runtime_error naming the file and line on a bad file.
std::unique_ptr<TokenChecker> make_file_token_checker(const std::string& path);

// Signed tokens (docs/security.md, "Client authentication"), checked with the
// HMAC-SHA256 secret in `secret_path`. Throws std::runtime_error for a
// missing or short secret.
std::unique_ptr<TokenChecker> make_signed_token_checker(const std::string& secret_path);

}  // namespace hearth
