// The presence directory's state: which guilds learn a user's status, and
// which status wins, whatever order sets and registrations arrive in.
#include <gtest/gtest.h>

#include <algorithm>

#include "directory.hpp"

namespace hearth::presence {
namespace {

StampedStatus status(std::uint8_t s, std::uint64_t stamp, std::string activity = "") {
  return StampedStatus{s, std::move(activity), stamp};
}

std::vector<std::uint64_t> guilds_of(const std::vector<Apply>& out) {
  std::vector<std::uint64_t> g;
  for (const Apply& a : out) g.push_back(a.guild);
  std::sort(g.begin(), g.end());
  return g;
}

TEST(PresenceDirectory, TheNewestSetReachesEveryGuildOfTheUser) {
  UserDirectory dir;
  std::vector<Apply> out;
  dir.reg(1, 7, status(1, 0), false, 0, &out);
  dir.reg(2, 7, status(1, 0), false, 0, &out);
  dir.reg(3, 8, status(1, 0), false, 0, &out);
  EXPECT_TRUE(out.empty()) << "nothing known, nothing asked";
  dir.set(7, status(3, 100, "dnd"), 0, &out);
  EXPECT_EQ(guilds_of(out), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(out[0].user, 7u);
  EXPECT_EQ(out[0].status.status, 3u);
  out.clear();
  dir.set(7, status(2, 90), 0, &out);          // older (another node's clock): ignored
  dir.set(7, status(3, 100, "dnd"), 0, &out);  // the same set again
  EXPECT_TRUE(out.empty());
}

TEST(PresenceDirectory, ARegistrationIsAnsweredAdoptedOrCorrected) {
  UserDirectory dir;
  std::vector<Apply> out;
  dir.reg(1, 7, status(1, 0), true, 0, &out);  // nothing known: answered with stamp 0
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].guild, 1u);
  EXPECT_EQ(out[0].status.stamp, 0u);
  out.clear();
  // A guild showing a newer set than the directory's (a set it missed): the
  // other guilds learn it, not the one that brought it.
  dir.reg(2, 7, status(4, 200), false, 0, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].guild, 1u);
  EXPECT_EQ(out[0].status.status, 4u);
  out.clear();
  // A guild showing an older, different status is corrected; one showing the
  // same content with an older stamp is left alone.
  dir.reg(3, 7, status(1, 50), false, 0, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].guild, 3u);
  EXPECT_EQ(out[0].status.stamp, 200u);
  out.clear();
  dir.reg(4, 7, status(4, 150), false, 0, &out);
  EXPECT_TRUE(out.empty());
}

TEST(PresenceDirectory, AUserNoGuildShowsIsForgottenAndStaleGuildsExpire) {
  UserDirectory dir;
  std::vector<Apply> out;
  dir.reg(1, 7, status(3, 100), false, 0, &out);
  dir.reg(2, 7, status(3, 100), false, 0, &out);
  dir.unreg(1, 7);
  dir.unreg(2, 7);
  EXPECT_TRUE(dir.empty());
  dir.reg(3, 7, status(1, 0), true, 0, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status.stamp, 0u) << "a user's status is forgotten once nobody shows them";
  out.clear();
  // Registered at 0 and 1000; by 2500 only the second is fresh.
  dir.reg(4, 7, status(1, 0), false, 1000, &out);
  dir.expire(500);
  dir.set(7, status(2, 300), 2500, &out);
  EXPECT_EQ(guilds_of(out), (std::vector<std::uint64_t>{4}));
  dir.expire(3000);
  EXPECT_TRUE(dir.empty());
}

TEST(PresenceDirectory, MessagesRoundTripAndMalformedOnesAreRefused) {
  UserDirectory dir;
  std::vector<Apply> out;
  const std::string reg =
      pack_directory_register(5, {{7, status(1, 0), true}, {8, status(2, 40, "lunch"), false}});
  ASSERT_TRUE(apply_directory_message(dir, reg.data(), reg.size(), 0, &out));
  ASSERT_EQ(out.size(), 1u);  // the answer to user 7
  const std::string set = pack_directory_set(7, status(3, 50, "dnd"));
  ASSERT_TRUE(apply_directory_message(dir, set.data(), set.size(), 0, &out));
  ASSERT_EQ(out.size(), 2u);
  const std::string apply = pack_apply(out[1]);
  Apply back;
  ASSERT_TRUE(parse_apply(apply.data(), apply.size(), &back));
  EXPECT_EQ(back.guild, 0u) << "the guild is where it is published, not in the payload";
  EXPECT_EQ(back.user, 7u);
  EXPECT_EQ(back.status.activity, "dnd");
  const std::string unreg = pack_directory_unregister(5, 8);
  ASSERT_TRUE(apply_directory_message(dir, unreg.data(), unreg.size(), 0, &out));
  EXPECT_EQ(dir.size(), 1u);
  for (const std::string& bad : {std::string("\x91\x09", 2), std::string("\xc1"), std::string(),
                                 std::string("\x93\x01\x02", 3)}) {
    EXPECT_FALSE(apply_directory_message(dir, bad.data(), bad.size(), 0, &out));
  }
}

}  // namespace
}  // namespace hearth::presence
