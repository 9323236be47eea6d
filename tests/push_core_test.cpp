// The push pipeline's parts on their own: the collector's shedding policy,
// the FCM body and response rules, options, the device store, latency.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "collector.hpp"
#include "fcm.hpp"
#include "latency.hpp"
#include "push_options.hpp"
#include "token_store.hpp"

namespace hearth::push {
namespace {

std::vector<PushRequest> requests(std::size_t n, std::uint64_t first_user,
                                  Clock::time_point received = Clock::now()) {
  auto event = std::make_shared<PushEvent>();
  event->received = received;
  std::vector<PushRequest> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back({event, first_user + i, "t" + std::to_string(first_user + i), 0});
  }
  return out;
}

std::vector<std::uint64_t> users(const std::vector<PushRequest>& rs) {
  std::vector<std::uint64_t> out;
  for (const auto& r : rs) out.push_back(r.user);
  return out;
}

TEST(PushCollector, KeepNewestShedsTheOldestAndCountsThem) {
  PushMetrics m;
  Collector c(3, Keep::kNewest, {}, m);
  auto batch = requests(5, 1);
  c.offer(batch);
  EXPECT_EQ(c.buffered(), 3u);
  EXPECT_EQ(m.received, 5u);
  EXPECT_EQ(m.shed[0], 2u);  // shed_buffer_full
  std::vector<PushRequest> out;
  c.add_consumer([] {});
  c.take(0, 10, out);
  EXPECT_EQ(users(out), (std::vector<std::uint64_t>{3, 4, 5}));
}

TEST(PushCollector, KeepOldestShedsTheNewcomers) {
  PushMetrics m;
  Collector c(3, Keep::kOldest, {}, m);
  auto batch = requests(5, 1);
  c.offer(batch);
  std::vector<PushRequest> out;
  c.add_consumer([] {});
  c.take(0, 10, out);
  EXPECT_EQ(users(out), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(m.shed[0], 2u);
}

TEST(PushCollector, TakesNoMoreThanDemandedAndWakesAHungryPusher) {
  PushMetrics m;
  Collector c(100, Keep::kNewest, {}, m);
  int woken = 0;
  c.add_consumer([&] { ++woken; });
  std::vector<PushRequest> out;
  c.take(0, 4, out);  // empty: the pusher is now waiting
  EXPECT_TRUE(out.empty());
  auto batch = requests(10, 1);
  c.offer(batch);
  EXPECT_EQ(woken, 1);
  c.take(0, 4, out);
  EXPECT_EQ(out.size(), 4u);
  auto more = requests(1, 50);
  c.offer(more);
  EXPECT_EQ(woken, 1) << "a pusher that got all it asked for is not woken";
}

TEST(PushCollector, ExpiredRequestsAreShedNotSent) {
  PushMetrics m;
  Collector c(10, Keep::kNewest, std::chrono::seconds(60), m);
  auto old = requests(2, 1, Clock::now() - std::chrono::seconds(61));
  auto fresh = requests(1, 9);
  c.offer(old);
  c.offer(fresh);
  c.add_consumer([] {});
  std::vector<PushRequest> out;
  c.take(0, 10, out);
  EXPECT_EQ(users(out), (std::vector<std::uint64_t>{9}));
  EXPECT_EQ(m.shed[1], 2u);  // shed_expired
}

TEST(PushCollector, CloseShedsWhatIsBufferedAndLaterOffers) {
  PushMetrics m;
  Collector c(10, Keep::kNewest, {}, m);
  auto batch = requests(4, 1);
  c.offer(batch);
  c.close();
  auto late = requests(3, 10);
  c.offer(late);
  EXPECT_EQ(c.buffered(), 0u);
  EXPECT_EQ(m.shed[2], 7u);  // shed_shutdown
  EXPECT_EQ(m.received, 7u);
}

TEST(PushCollector, UnderAFloodEveryRequestIsTakenOrCountedShed) {
  // Two producers offer 200x the buffer while a pusher takes: nothing is
  // lost uncounted, and the pusher keeps getting work throughout.
  PushMetrics m;
  Collector c(1000, Keep::kNewest, {}, m);
  c.add_consumer([] {});
  std::atomic<int> producing{2};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < 200; ++i) {
        auto batch = requests(500, static_cast<std::uint64_t>(p * 1000000 + i * 500));
        c.offer(batch);
      }
      --producing;
    });
  }
  std::size_t taken = 0;
  std::vector<PushRequest> out;
  while (producing > 0 || c.buffered() > 0) {
    out.clear();
    c.take(0, 100, out);
    taken += out.size();
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(m.received, 200000u);
  EXPECT_EQ(m.received, taken + m.shed[0]);
  EXPECT_GE(taken, 1000u);
}

TEST(PushFcm, BodyIsFcmV1WithEscapedTextAndBase64Payload) {
  auto event = std::make_shared<PushEvent>();
  event->guild = 42;
  event->kind = 7;
  event->payload = std::string("\x00\xffhi", 4);
  event->title = "Ann \"quoted\"";
  event->body = "line\nnext \xc3\xa9 \xff";
  PushRequest r{event, 9, "tok-1", 0};
  EXPECT_EQ(fcm_body(r, 2048),
            R"({"message":{"token":"tok-1","notification":{"title":"Ann \"quoted\"",)"
            R"("body":"line\u000anext é \ufffd"},"data":{"guild":"42","kind":"7",)"
            R"("user":"9","payload":"AP9oaQ=="}}})");
  EXPECT_NE(fcm_body(r, 3).find(R"("payload_omitted":"1")"), std::string::npos);
  event->title.clear();
  event->body.clear();
  EXPECT_EQ(fcm_body(r, 2048).find("notification"), std::string::npos);
}

TEST(PushFcm, Base64MatchesTheRfcVectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(PushFcm, ResponsesAreClassifiedAsFcmDocumentsThem) {
  using A = Outcome::Action;
  EXPECT_EQ(classify(200, false, "").action, A::kDelivered);
  EXPECT_EQ(classify(503, false, "").action, A::kRetry);
  EXPECT_EQ(classify(503, false, "").reason, FailReason::kServerError);
  EXPECT_EQ(classify(429, false, "").reason, FailReason::kRateLimited);
  EXPECT_EQ(classify(0, true, "").reason, FailReason::kTimeout);
  EXPECT_EQ(classify(0, false, "").reason, FailReason::kConnection);
  EXPECT_EQ(classify(0, false, "").action, A::kRetry);
  auto gone = classify(404, false, R"({"error":{"details":[{"errorCode":"UNREGISTERED"}]}})");
  EXPECT_EQ(gone.action, A::kFail);
  EXPECT_EQ(gone.reason, FailReason::kInvalidToken);
  EXPECT_EQ(
      classify(400, false, "The registration token is not a valid FCM registration token").reason,
      FailReason::kInvalidToken);
  EXPECT_EQ(classify(401, false, "").reason, FailReason::kAuth);
  EXPECT_EQ(classify(400, false, "bad json").reason, FailReason::kRejected);
  EXPECT_EQ(classify(400, false, "bad json").action, A::kFail);
}

PushOptions parse(std::map<std::string, std::string> values) {
  return parse_options([&](const char* key) -> std::optional<std::string> {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  });
}

TEST(PushOptionsTest, DefaultsAndKindsParse) {
  auto o =
      parse({{"url", "http://127.0.0.1:1/send"}, {"guild_kinds", "42:1,2;43:7"}, {"kinds", "9"}});
  EXPECT_TRUE(o.http2);
  EXPECT_EQ(o.max_in_flight, 100u);
  EXPECT_EQ(o.keep, Keep::kNewest);
  EXPECT_TRUE(o.pushes_kind(42, 2));
  EXPECT_TRUE(o.pushes_kind(43, 7));
  EXPECT_FALSE(o.pushes_kind(43, 1));
  EXPECT_TRUE(o.pushes_kind(1000, 9));
}

TEST(PushOptionsTest, BadValuesNameTheOption) {
  auto error = [](std::map<std::string, std::string> v) {
    try {
      parse(v);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error({}).find("push.url"), std::string::npos);
  const std::string url = "http://127.0.0.1:1/send";
  EXPECT_NE(error({{"url", url}, {"http", "3"}}).find("push.http"), std::string::npos);
  EXPECT_NE(error({{"url", url}, {"max_in_flight", "0"}}).find("push.max_in_flight"),
            std::string::npos);
  EXPECT_NE(error({{"url", url}, {"buffer", "lots"}}).find("push.buffer"), std::string::npos);
  EXPECT_NE(error({{"url", url}, {"keep", "middle"}}).find("push.keep"), std::string::npos);
  EXPECT_NE(error({{"url", url}, {"guild_kinds", "42"}}).find("push.guild_kinds"),
            std::string::npos);
  EXPECT_NE(error({{"url", url}, {"headers", "no colon here"}}).find("push.headers"),
            std::string::npos);
  EXPECT_EQ(parse({{"url", url}, {"headers", "A: 1; B: two"}}).headers,
            (std::vector<std::string>{"A: 1", "B: two"}));
}

class PushStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hearth-push-store-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string db() const { return (dir_ / "push.db").string(); }
  std::filesystem::path dir_;
};

using Change = TokenStore::Change;

TEST_F(PushStore, DevicesAndMembershipsSurviveReopening) {
  {
    TokenStore s(db(), 10);
    EXPECT_EQ(s.add(1, "a", {10, 20}), Change::kDone);
    s.add(1, "b", {10, 20});
    s.add(2, "c", {20});
    EXPECT_EQ(s.tokens_of(1), (std::vector<std::string>{"a", "b"})) << "seen before it is written";
  }  // closing writes what waits
  TokenStore s(db(), 10);
  EXPECT_EQ(s.tokens_of(1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.members_with_devices(10), (std::vector<std::uint64_t>{1}));
  auto twenty = s.members_with_devices(20);
  std::sort(twenty.begin(), twenty.end());
  EXPECT_EQ(twenty, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(s.device_count(), 3u);
}

TEST_F(PushStore, RemovalIsPerUserAndATokenMovesToItsNewUser) {
  {
    TokenStore s(db(), 10);
    s.add(1, "a", {10});
    EXPECT_EQ(s.remove("a", 2), Change::kNotFound) << "another user cannot remove it";
    s.add(2, "a", {30});  // the phone changed hands
    EXPECT_TRUE(s.tokens_of(1).empty());
    EXPECT_TRUE(s.members_with_devices(10).empty());
    EXPECT_EQ(s.tokens_of(2), (std::vector<std::string>{"a"}));
    s.add(3, "b", {30});
    EXPECT_EQ(s.remove("b"), Change::kDone);
    EXPECT_EQ(s.remove("b"), Change::kNotFound);
  }
  TokenStore s(db(), 10);
  EXPECT_TRUE(s.tokens_of(1).empty());
  EXPECT_EQ(s.tokens_of(2), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(s.tokens_of(3).empty());
  EXPECT_EQ(s.device_count(), 1u);
}

TEST_F(PushStore, UserZeroIsAUserLikeAnyOther) {
  TokenStore s(db(), 10);
  s.add(5, "theirs", {10});
  s.add(0, "mine", {10});
  EXPECT_EQ(s.remove("theirs", 0), Change::kNotFound) << "user 0 is not 'any user'";
  EXPECT_EQ(s.tokens_of(5), (std::vector<std::string>{"theirs"}));
  EXPECT_EQ(s.remove("mine", 0), Change::kDone);
  EXPECT_TRUE(s.tokens_of(0).empty());
}

TEST_F(PushStore, AUserKeepsOnlyTheMostRecentDevices) {
  {
    TokenStore s(db(), 2);
    s.add(1, "a", {10});
    s.add(1, "b", {10});
    s.add(1, "c", {10});
    EXPECT_EQ(s.tokens_of(1), (std::vector<std::string>{"b", "c"}));
  }
  TokenStore s(db(), 2);
  EXPECT_EQ(s.tokens_of(1), (std::vector<std::string>{"b", "c"})) << "the database agrees";
}

TEST_F(PushStore, AnotherNodesRegistrationsAreSeenWithoutARestart) {
  TokenStore mine(db(), 10);
  TokenStore other(db(), 10);  // another node of this host, same file
  other.add(7, "x", {70});
  other.flush();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (mine.tokens_of(7).empty() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(mine.tokens_of(7), (std::vector<std::string>{"x"}));
  EXPECT_EQ(mine.members_with_devices(70), (std::vector<std::uint64_t>{7}));
}

TEST_F(PushStore, AStormOfRegistrationsIsWrittenInFull) {
  {
    TokenStore s(db(), 10);
    for (std::uint64_t u = 1; u <= 20000; ++u) s.add(u, "t" + std::to_string(u), {u % 50});
    s.flush();
    EXPECT_EQ(s.write_failures(), 0u);
  }
  TokenStore s(db(), 10);
  EXPECT_EQ(s.device_count(), 20000u);
  EXPECT_EQ(s.members_with_devices(7).size(), 400u);
}

TEST_F(PushStore, ChangesBeyondThePendingLimitAreRefusedNotQueued) {
  TokenStore s(db(), 10, /*max_pending=*/0);
  EXPECT_EQ(s.add(1, "a", {10}), Change::kBusy);
  EXPECT_TRUE(s.tokens_of(1).empty()) << "a refused change changes nothing";
}

TEST_F(PushStore, TokensAreCheckedAndAnUnusableFileIsAClearError) {
  EXPECT_EQ(TokenStore::check_token("abc:DEF-123_x"), "");
  EXPECT_NE(TokenStore::check_token(""), "");
  EXPECT_NE(TokenStore::check_token("has space"), "");
  EXPECT_NE(TokenStore::check_token("quote\""), "");
  EXPECT_NE(TokenStore::check_token(std::string(5000, 'a')), "");
  try {
    TokenStore s((dir_ / "no-such-dir" / "push.db").string(), 10);
    FAIL() << "opened a database in a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

TEST(PushLatency, PercentilesAreWithinOneBucketAndTheWindowRestarts) {
  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 1000; ++us) h.record(us * 1000);  // 1..1000 ms
  const auto p = h.take_window();
  EXPECT_EQ(p.count, 1000u);
  EXPECT_EQ(p.max_us, 1000000u);
  EXPECT_NEAR(static_cast<double>(p.p50_us), 500000.0, 500000.0 * 0.125);
  EXPECT_NEAR(static_cast<double>(p.p99_us), 990000.0, 990000.0 * 0.125);
  EXPECT_GE(p.p99_us, p.p90_us);
  EXPECT_GE(p.p90_us, p.p50_us);
  EXPECT_EQ(h.take_window().count, 0u);
}

}  // namespace
}  // namespace hearth::push
