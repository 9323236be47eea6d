// Signed tokens: what a holder of the secret signs is accepted for that user
// until it expires, and nothing else is.
#include "nodes/signed_token.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

const std::string kSecret(40, 's');

TokenClaims claims(std::uint64_t user, std::uint64_t expires, const std::string& guilds) {
  std::string error;
  auto grant = parse_guild_grant(guilds, &error);
  EXPECT_TRUE(grant) << error;
  return TokenClaims{user, expires, grant.value_or(GuildGrant{})};
}

TEST(SignedToken, ASignedTokenIsAcceptedForItsUserUntilItExpires) {
  const std::string token = sign_token(kSecret, claims(42, 1000, "1,5-9"));
  EXPECT_EQ(token.rfind("hearth1.42.1000.1,5-9.", 0), 0u) << token;
  TokenClaims got;
  EXPECT_EQ(verify_token(kSecret, token, 42, 999, &got), std::nullopt);
  EXPECT_TRUE(got.guilds.allows(1));
  EXPECT_FALSE(got.guilds.allows(2));
  EXPECT_TRUE(got.guilds.allows(5));
  EXPECT_TRUE(got.guilds.allows(9));
  EXPECT_FALSE(got.guilds.allows(10));
  EXPECT_EQ(verify_token(kSecret, token, 42, 1000, nullptr), "token expired");
  EXPECT_EQ(verify_token(kSecret, token, 43, 999, nullptr), "token was issued for another user");
}

TEST(SignedToken, TamperingOrAnotherSecretIsRefused) {
  std::string token = sign_token(kSecret, claims(42, 1000, "1"));
  EXPECT_EQ(verify_token(std::string(40, 't'), token, 42, 1, nullptr), "bad token signature");
  std::string widened = token;
  widened.replace(widened.find(".1."), 3, ".all.");
  EXPECT_EQ(verify_token(kSecret, widened, 42, 1, nullptr), "bad token signature");
  token.back() = token.back() == '0' ? '1' : '0';
  EXPECT_EQ(verify_token(kSecret, token, 42, 1, nullptr), "bad token signature");
  EXPECT_TRUE(verify_token(kSecret, "", 42, 1, nullptr));
  EXPECT_TRUE(verify_token(kSecret, "hearth1.42.1000.all.zz", 42, 1, nullptr));
}

TEST(SignedToken, GuildListsAreParsedStrictly) {
  std::string error;
  EXPECT_TRUE(parse_guild_grant("all", &error)->all);
  auto merged = parse_guild_grant("9-12,1,2,10-20", &error);
  ASSERT_TRUE(merged);
  EXPECT_EQ(merged->describe(), "1-2,9-20");
  for (const char* bad : {"", ",", "1,,2", "5-1", "x", "-3", "1-", "18446744073709551616"}) {
    EXPECT_FALSE(parse_guild_grant(bad, &error)) << bad;
  }
}

}  // namespace
}  // namespace hearth
