// The C++ client library's version-2 calls against a running node: READY's
// resume token, SUBSCRIBE and UNSUBSCRIBE on a live session, epochs, and
// RESUME on a fresh connection after reconnect(), with a gap-free stream.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

// Polls until a message of type T satisfying `pred` arrives; every message
// polled meanwhile is appended to `seen`.
template <class T, class Pred>
std::optional<T> wait_for(hc::SessionClient& c, std::vector<hc::Message>& seen, Pred pred,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  std::size_t checked = 0;
  while (true) {
    for (; checked < seen.size(); ++checked) {
      if (auto* m = std::get_if<T>(&seen[checked]); m && pred(*m)) return *m;
    }
    if (std::chrono::steady_clock::now() > end) return std::nullopt;
    c.poll(seen, std::chrono::milliseconds(20));
  }
}

// Publishes with acknowledgements and returns the acks, in ack id order.
std::vector<hc::PublishAck> publish_acked(hc::Publisher& pub,
                                          const std::vector<std::uint64_t>& guilds) {
  for (std::size_t i = 0; i < guilds.size(); ++i) {
    pub.publish(guilds[i], 1, "to-" + std::to_string(guilds[i]), i + 1);
  }
  std::vector<hc::PublishAck> acks(guilds.size());
  std::size_t got = 0;
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got < guilds.size() && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    pub.poll(msgs, std::chrono::milliseconds(50));
    for (auto& m : msgs) {
      if (auto* a = std::get_if<hc::PublishAck>(&m)) acks.at(a->ack_id - 1) = *a, ++got;
    }
  }
  EXPECT_EQ(got, guilds.size());
  return acks;
}

TEST(Client, SubscribeUnsubscribeAndResumeAfterReconnect) {
  const int base = port_base() + 6;
  Process aio("client", all_in_one_args(base));
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", std::chrono::seconds(10))) << aio.log();
  hc::SessionClient c(tcp(base + 2));
  hc::Publisher pub(tcp(base));
  std::vector<hc::Message> seen;

  c.identify(7, 42, "t", {1, 2});
  auto ready = wait_for<hc::Ready>(c, seen, [](auto& r) { return r.request_id == 7; });
  ASSERT_TRUE(ready);
  const std::uint64_t sid = ready->session_id;
  EXPECT_EQ(ready->resume_token.size(), 16u);
  EXPECT_GT(ready->resume_grace_ms, 0u);
  std::map<std::uint64_t, hc::Subscribed> subscribed;
  for (std::uint64_t g : {1, 2}) {
    auto s = wait_for<hc::Subscribed>(c, seen, [&](auto& m) { return m.guild_id == g; });
    ASSERT_TRUE(s) << "guild " << g;
    EXPECT_EQ(s->code, 0u);
    EXPECT_EQ(s->request_id, 7u);
    EXPECT_FALSE(s->refetch);
    subscribed[g] = *s;
  }

  // Events carry the epoch their SUBSCRIBED and PUBLISH_ACK name.
  auto acks = publish_acked(pub, {1});
  auto ev = wait_for<hc::Event>(c, seen, [](auto& e) { return e.guild_id == 1; });
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->epoch, subscribed[1].epoch);
  EXPECT_EQ(acks[0].epoch, ev->epoch);
  EXPECT_EQ(acks[0].guild_seq, ev->guild_seq);
  EXPECT_EQ(ev->payload, "to-1");

  // A live session gains guild 3 and drops guild 1.
  c.subscribe(21, sid, {3});
  auto s3 = wait_for<hc::Subscribed>(c, seen, [](auto& m) { return m.guild_id == 3; });
  ASSERT_TRUE(s3);
  EXPECT_EQ(s3->request_id, 21u);
  c.unsubscribe(22, sid, {1});
  auto u1 = wait_for<hc::Unsubscribed>(c, seen, [](auto& m) { return m.guild_id == 1; });
  ASSERT_TRUE(u1);
  EXPECT_EQ(u1->request_id, 22u);
  c.heartbeat(1);
  auto beat = wait_for<hc::HeartbeatAck>(c, seen, [](auto& a) { return a.nonce == 1; });
  ASSERT_TRUE(beat);
  EXPECT_EQ(beat->sessions, 1u);

  // Everything so far, as a stream: 1, 2, ... with no gap.
  std::uint64_t last_seq = 0;
  for (auto& m : seen) {
    if (auto pos = hc::stream_position(m)) {
      ASSERT_EQ(pos->session_id, sid);
      ASSERT_EQ(pos->seq, last_seq + 1);
      last_seq = pos->seq;
    }
  }
  EXPECT_EQ(last_seq, 5u);  // SUBSCRIBED x2, an event, SUBSCRIBED, UNSUBSCRIBED

  // A fresh connection holds no session; events published meanwhile are
  // replayed on RESUME, guild 1's are not sent at all.
  c.reconnect();
  seen.clear();
  c.heartbeat(2);
  beat = wait_for<hc::HeartbeatAck>(c, seen, [](auto& a) { return a.nonce == 2; });
  ASSERT_TRUE(beat);
  EXPECT_EQ(beat->sessions, 0u);
  publish_acked(pub, {1, 2, 3});
  c.resume(31, sid, std::string(16, 'x'), last_seq);
  auto refused = wait_for<hc::InvalidSession>(c, seen, [](auto& m) { return m.request_id == 31; });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, 5u);  // AUTH_FAILED; the session is untouched
  c.resume(32, sid, ready->resume_token, last_seq);
  auto resumed = wait_for<hc::Resumed>(c, seen, [](auto& m) { return m.request_id == 32; });
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->session_id, sid);
  EXPECT_LE(resumed->replayed, 2u);
  // `seen` holds what arrived since reconnect(), maybe replayed items already.
  std::vector<hc::Event> after;
  std::size_t checked = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < end) {
    for (std::size_t& i = checked; i < seen.size(); ++i) {
      if (auto pos = hc::stream_position(seen[i])) {
        ASSERT_EQ(pos->seq, last_seq + 1);
        last_seq = pos->seq;
      }
      if (auto* e = std::get_if<hc::Event>(&seen[i])) after.push_back(*e);
    }
    if (after.size() >= 2) break;
    c.poll(seen, std::chrono::milliseconds(50));
  }
  ASSERT_EQ(after.size(), 2u);  // guilds 2 and 3, in either order (different guilds)
  std::map<std::uint64_t, std::uint64_t> epochs;
  for (auto& e : after) epochs[e.guild_id] = e.epoch;
  EXPECT_EQ(epochs,
            (std::map<std::uint64_t, std::uint64_t>{{2, subscribed[2].epoch}, {3, s3->epoch}}));
  c.heartbeat(3);
  beat = wait_for<hc::HeartbeatAck>(c, seen, [](auto& a) { return a.nonce == 3; });
  ASSERT_TRUE(beat);
  EXPECT_EQ(beat->sessions, 1u);
  EXPECT_TRUE(aio.alive());
}

}  // namespace
}  // namespace hearth::test
