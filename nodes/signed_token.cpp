#include "nodes/signed_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace hearth {
namespace {

constexpr std::string_view kPrefix = "hearth1";
constexpr std::size_t kMacBytes = 32;

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

void mac_of(std::string_view secret, std::string_view signed_part, unsigned char* out) {
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), out,
            &len) ||
      len != kMacBytes) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string claims_text(const TokenClaims& c) {
  return std::string(kPrefix) + "." + std::to_string(c.user) + "." + std::to_string(c.expires) +
         "." + c.guilds.describe();
}

}  // namespace

std::string read_token_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open token secret file '" + path + "'");
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (secret.size() < kMinSecretBytes) {
    throw std::runtime_error("token secret file '" + path + "' holds " +
                             std::to_string(secret.size()) + " bytes; at least " +
                             std::to_string(kMinSecretBytes) +
                             " are needed (hearth token --new-secret FILE makes one)");
  }
  return secret;
}

std::optional<GuildGrant> parse_guild_grant(std::string_view text, std::string* error) {
  GuildGrant grant;
  if (text == "all") return grant;
  grant.all = false;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    const auto first = parse_u64(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_u64(item.substr(dash + 1));
    if (!first || !last || *last < *first) {
      *error = "guilds must be 'all' or a list like 1,5-9; '" + std::string(item) + "' is not";
      return std::nullopt;
    }
    if (grant.ranges.size() == kMaxGrantRanges) {
      *error = "at most " + std::to_string(kMaxGrantRanges) + " guild ranges";
      return std::nullopt;
    }
    grant.ranges.emplace_back(*first, *last);
    start = comma + 1;
  }
  std::sort(grant.ranges.begin(), grant.ranges.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
  for (const auto& r : grant.ranges) {
    if (!merged.empty() &&
        (r.first <= merged.back().second || r.first - 1 == merged.back().second)) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  grant.ranges = std::move(merged);
  return grant;
}

std::string sign_token(std::string_view secret, const TokenClaims& claims) {
  const std::string body = claims_text(claims);
  unsigned char mac[kMacBytes];
  mac_of(secret, body, mac);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = body + ".";
  for (unsigned char b : mac) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::optional<std::string> verify_token(std::string_view secret, std::string_view token,
                                        std::uint64_t user, std::uint64_t now,
                                        TokenClaims* claims) {
  const std::size_t dot = token.rfind('.');
  if (dot == std::string_view::npos || token.size() - dot - 1 != 2 * kMacBytes) {
    return std::string("not a signed token");
  }
  unsigned char given[kMacBytes];
  bool hex_ok = true;
  for (std::size_t i = 0; i < kMacBytes; ++i) {
    const int hi = hex_value(token[dot + 1 + 2 * i]);
    const int lo = hex_value(token[dot + 2 + 2 * i]);
    hex_ok &= hi >= 0 && lo >= 0;
    given[i] = static_cast<unsigned char>((hi & 15) << 4 | (lo & 15));
  }
  const std::string_view body = token.substr(0, dot);
  unsigned char expected[kMacBytes];
  mac_of(secret, body, expected);
  if (!hex_ok || CRYPTO_memcmp(given, expected, kMacBytes) != 0) {
    return std::string("bad token signature");
  }
  // Signed by us: the fields below are ours, but are still parsed strictly.
  std::string_view fields[4];
  std::size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t end = i < 3 ? body.find('.', start) : body.size();
    if (end == std::string_view::npos) return std::string("malformed token");
    fields[i] = body.substr(start, end - start);
    start = end + 1;
  }
  const auto token_user = parse_u64(fields[1]);
  const auto expires = parse_u64(fields[2]);
  std::string error;
  auto grant = parse_guild_grant(fields[3], &error);
  if (fields[0] != kPrefix || !token_user || !expires || !grant) {
    return std::string("malformed token");
  }
  if (*token_user != user) return std::string("token was issued for another user");
  if (*expires <= now) return std::string("token expired");
  if (claims) *claims = TokenClaims{*token_user, *expires, std::move(*grant)};
  return std::nullopt;
}

}  // namespace hearth
