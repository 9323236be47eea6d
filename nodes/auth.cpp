#include "nodes/auth.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "nodes/signed_token.hpp"

namespace hearth {
namespace {

class DevTokenChecker final : public TokenChecker {
 public:
  std::optional<std::string> check(std::uint64_t, std::string_view, GuildGrant*) const override {
    return std::nullopt;
  }
  std::string describe() const override {
    return "development mode: ANY token is accepted (use --auth file for production)";
  }
};

class FileTokenChecker final : public TokenChecker {
 public:
  explicit FileTokenChecker(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open token file '" + path + "'");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::istringstream fields(line);
      std::string user_text, token, extra;
      if (!(fields >> user_text)) continue;
      std::uint64_t user = 0;
      try {
        std::size_t used = 0;
        user = std::stoull(user_text, &used);
        if (used != user_text.size()) throw std::invalid_argument("digits");
      } catch (const std::exception&) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": user id '" + user_text +
                                 "' is not an unsigned integer");
      }
      if (!(fields >> token) || (fields >> extra)) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": expected '<user id> <token>'");
      }
      tokens_[user] = token;
    }
  }

  std::optional<std::string> check(std::uint64_t user, std::string_view token,
                                   GuildGrant*) const override {
    auto it = tokens_.find(user);
    // Constant time over the token's bytes: a guess learns nothing from timing
    // but, at most, the length.
    if (it == tokens_.end() || it->second.size() != token.size() ||
        CRYPTO_memcmp(it->second.data(), token.data(), token.size()) != 0) {
      return "invalid token for this user";
    }
    return std::nullopt;
  }
  std::string describe() const override {
    return "token file '" + path_ + "' with " + std::to_string(tokens_.size()) + " user(s)";
  }

 private:
  std::string path_;
  std::unordered_map<std::uint64_t, std::string> tokens_;
};

class SignedTokenChecker final : public TokenChecker {
 public:
  explicit SignedTokenChecker(const std::string& path)
      : path_(path), secret_(read_token_secret(path)) {}

  std::optional<std::string> check(std::uint64_t user, std::string_view token,
                                   GuildGrant* grant) const override {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    TokenClaims claims;
    if (auto refusal =
            verify_token(secret_, token, user, static_cast<std::uint64_t>(now), &claims)) {
      return refusal;
    }
    if (grant) *grant = std::move(claims.guilds);
    return std::nullopt;
  }
  std::string describe() const override {
    return "signed tokens (HMAC-SHA256) with the secret in '" + path_ + "'";
  }

 private:
  std::string path_;
  std::string secret_;
};

}  // namespace

std::unique_ptr<TokenChecker> make_signed_token_checker(const std::string& secret_path) {
  return std::make_unique<SignedTokenChecker>(secret_path);
}

bool GuildGrant::allows(std::uint64_t guild) const {
  if (all) return true;
  // Ranges are sorted by first: the last range starting at or before guild.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), guild,
                             [](std::uint64_t g, const auto& r) { return g < r.first; });
  return it != ranges.begin() && guild <= std::prev(it)->second;
}

std::string GuildGrant::describe() const {
  if (all) return "all";
  std::string out;
  for (const auto& [first, last] : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(first);
    if (last != first) out += "-" + std::to_string(last);
  }
  return out;
}

std::unique_ptr<TokenChecker> make_dev_token_checker() {
  return std::make_unique<DevTokenChecker>();
}

std::unique_ptr<TokenChecker> make_file_token_checker(const std::string& path) {
  return std::make_unique<FileTokenChecker>(path);
}

}  // namespace hearth
