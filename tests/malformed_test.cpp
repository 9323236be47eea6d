// Bad input gets a clear ERROR and disturbs nobody else.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <numeric>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

template <class... T>
std::string header(const T&... fields) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(fields...));
  return std::string(b.data(), b.size());
}

// 1, 2, ..., n: duplicates would not count toward the guild limit.
std::vector<int> distinct_guilds(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 1);
  return v;
}

template <class Client>
hc::ServerError expect_error(Client& c, const std::vector<std::string>& frames) {
  c.send_raw(frames);
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < end) {
    c.poll(msgs, std::chrono::milliseconds(50));
    for (auto& m : msgs) {
      if (auto* e = std::get_if<hc::ServerError>(&m)) return *e;
    }
    msgs.clear();
  }
  ADD_FAILURE() << "no ERROR reply";
  return {};
}

class Malformed : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = port_base() + 13;
    aio_ = std::make_unique<Process>(
        "malformed",
        std::vector<std::string>{"all-in-one", "--frontend", tcp(base_), "--backend",
                                 tcp(base_ + 1), "--listen", tcp(base_ + 2), "--shards", "2"});
    ASSERT_TRUE(aio_->wait_for_log("with 1 guild node(s)", std::chrono::seconds(10)));
    SessionRecord r;
    r.user = 1;
    r.guilds = {5};
    healthy_ = std::make_unique<Fleet>(std::vector<std::string>{tcp(base_ + 2)}, 1,
                                       std::vector<SessionRecord>{r});
    ASSERT_TRUE(
        healthy_->pump_until([&] { return healthy_->all_subscribed(); }, std::chrono::seconds(10)));
  }

  // The healthy session still gets a published event, in sequence (its
  // stream starts with the SUBSCRIBED of guild 5).
  void expect_healthy(std::uint64_t expected_events) {
    hc::Publisher pub(tcp(base_));
    pub.publish(5, 1, "still-fine");
    ASSERT_TRUE(healthy_->pump_until([&] { return healthy_->events_received() >= expected_events; },
                                     std::chrono::seconds(5)));
    auto& events = healthy_->sessions()[0].events;
    EXPECT_EQ(events.back().payload, "still-fine");
    EXPECT_EQ(events.back().seq, expected_events + 1);
    EXPECT_EQ(stream_gap(healthy_->sessions()[0]), "");
    EXPECT_TRUE(aio_->alive());
  }

  int base_ = 0;
  std::unique_ptr<Process> aio_;
  std::unique_ptr<Fleet> healthy_;
};

TEST_F(Malformed, SessionNodeAnswersEveryKindOfBadFrame) {
  hc::SessionClient bad(tcp(base_ + 2));
  struct Case {
    const char* what;
    std::vector<std::string> frames;
    std::uint32_t code;
  };
  const std::string long_token(5000, 't');
  const std::vector<Case> cases = {
      {"empty header", {""}, 1},
      {"not MessagePack", {"\xc1\xc1"}, 1},
      {"truncated", {header(2, 1, 7, 8).substr(0, 3)}, 1},
      {"not an array", {header(42).substr(1)}, 1},
      {"version 1", {header(1, 1, 1, 1, std::string("t"), std::vector<int>{1})}, 2},
      {"version 3", {header(3, 1, 1, 1, std::string("t"), std::vector<int>{1})}, 2},
      {"unknown type", {header(2, 99)}, 3},
      {"string user id",
       {header(2, 1, 1, std::string("me"), std::string("t"), std::vector<int>{})},
       1},
      {"negative guild", {header(2, 1, 1, 1, std::string("t"), std::vector<int>{-1})}, 1},
      {"missing guilds", {header(2, 1, 1, 1, std::string("t"))}, 1},
      {"too many guilds", {header(2, 1, 1, 1, std::string("t"), distinct_guilds(1001))}, 4},
      {"oversized token", {header(2, 1, 1, 1, long_token, std::vector<int>{1})}, 4},
      {"extra frame", {header(2, 5, 1), "surprise"}, 1},
      {"leave of a stranger's session", {header(2, 7, 123456789)}, 7},
      {"publish sent to a session node", {header(2, 16, 5, 1, 0), "x"}, 3},
  };
  for (const Case& c : cases) {
    const auto err = expect_error(bad, c.frames);
    EXPECT_EQ(err.code, c.code) << c.what << ": " << err.text;
    EXPECT_FALSE(err.text.empty()) << c.what;
  }
  expect_healthy(1);
  EXPECT_TRUE(healthy_->errors().empty());
}

TEST_F(Malformed, BrokerAnswersEveryKindOfBadPublish) {
  hc::Publisher bad(tcp(base_));
  struct Case {
    const char* what;
    std::vector<std::string> frames;
    std::uint32_t code;
  };
  const std::vector<Case> cases = {
      {"no payload frame", {header(2, 16, 5, 1, 9)}, 1},
      {"two payload frames", {header(2, 16, 5, 1, 9), "a", "b"}, 1},
      {"guild as string", {header(2, 16, std::string("5"), 1, 9), "a"}, 1},
      {"garbage header", {"\xc1", "a"}, 1},
      {"version 1", {header(1, 16, 5, 1, 9), "a"}, 2},
      {"version 3", {header(3, 16, 5, 1, 9), "a"}, 2},
      {"unknown type", {header(2, 1, 5), "a"}, 3},
  };
  for (const Case& c : cases) {
    const auto err = expect_error(bad, c.frames);
    EXPECT_EQ(err.code, c.code) << c.what << ": " << err.text;
  }
  // The same publisher still works after its mistakes.
  bad.publish(5, 1, "ok", 77);
  std::vector<hc::Message> msgs;
  bad.poll(msgs, std::chrono::seconds(5));
  ASSERT_FALSE(msgs.empty());
  auto* ack = std::get_if<hc::PublishAck>(&msgs[0]);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->ack_id, 77u);
  EXPECT_EQ(ack->guild_id, 5u);
  ASSERT_TRUE(healthy_->pump_until([&] { return healthy_->events_received() >= 1; },
                                   std::chrono::seconds(5)));
  expect_healthy(2);
}

TEST_F(Malformed, EmptyPayloadIsDeliveredAsEmpty) {
  hc::Publisher pub(tcp(base_));
  pub.publish(5, 3, "");
  ASSERT_TRUE(healthy_->pump_until([&] { return healthy_->events_received() >= 1; },
                                   std::chrono::seconds(5)));
  EXPECT_EQ(healthy_->sessions()[0].events[0].payload, "");
  EXPECT_EQ(healthy_->sessions()[0].events[0].kind, 3u);
}

TEST_F(Malformed, BinaryPayloadBytesArriveUntouched) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  hc::Publisher pub(tcp(base_));
  pub.publish(5, 1, bytes);
  ASSERT_TRUE(healthy_->pump_until([&] { return healthy_->events_received() >= 1; },
                                   std::chrono::seconds(5)));
  EXPECT_EQ(healthy_->sessions()[0].events[0].payload, bytes);
}

}  // namespace
}  // namespace hearth::test
