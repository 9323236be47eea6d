// Signed client tokens (docs/security.md, "Client authentication"):
//   hearth1.<user id>.<expires, unix seconds>.<guilds>.<signature>
// <guilds> is "all" or a comma list of guild ids and ranges ("1,5-9");
// <signature> is HMAC-SHA256(secret, everything before the last '.') in
// lowercase hex. Anyone holding the secret can mint tokens: keep it like a
// private key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nodes/auth.hpp"

namespace hearth {

inline constexpr std::size_t kMinSecretBytes = 32;
inline constexpr std::size_t kMaxGrantRanges = 1024;

struct TokenClaims {
  std::uint64_t user = 0;
  std::uint64_t expires = 0;  // unix seconds; the token is refused from then on
  GuildGrant guilds;
};

// The secret file's bytes (one trailing newline removed). Throws
// std::runtime_error when unreadable or shorter than kMinSecretBytes.
std::string read_token_secret(const std::string& path);

// "all" or "1,5-9"; nullopt (with `error`) for anything else, empty lists
// and more than kMaxGrantRanges ranges included. Ranges are sorted and merged.
std::optional<GuildGrant> parse_guild_grant(std::string_view text, std::string* error);

std::string sign_token(std::string_view secret, const TokenClaims& claims);

// Checks the signature (in constant time), the user and the expiry against
// `now` (unix seconds). nullopt and `claims` filled when valid; otherwise why not.
std::optional<std::string> verify_token(std::string_view secret, std::string_view token,
                                        std::uint64_t user, std::uint64_t now, TokenClaims* claims);

}  // namespace hearth
