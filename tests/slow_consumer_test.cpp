// A client that stops reading is closed with SLOW_CONSUMER once its queue is
// full; everyone else keeps receiving without delay.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

TEST(SlowConsumer, StalledClientIsClosedWithItsReasonAndOthersKeepReceiving) {
  const int base = port_base() + 16;
  Process aio("slow", {"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1),
                       "--listen", tcp(base + 2), "--shards", "2", "--client-hwm", "100",
                       "--client-backlog", "1000", "--max-batch", "1"});
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", std::chrono::seconds(10)));

  std::vector<SessionRecord> records(3);
  for (unsigned i = 0; i < 3; ++i) {
    records[i].user = i + 1;
    records[i].guilds = {9};
  }
  Fleet healthy({tcp(base + 2)}, 3, records);

  hc::SessionClient stalled(tcp(base + 2));
  stalled.identify(1, 99, "t", {9});
  std::vector<hc::Message> msgs;
  bool subscribed = false;
  for (int i = 0; i < 100 && !subscribed; ++i) {
    stalled.poll(msgs, std::chrono::milliseconds(50));
    for (auto& m : msgs) subscribed |= std::holds_alternative<hc::Subscribed>(m);
    msgs.clear();
  }
  ASSERT_TRUE(subscribed);
  ASSERT_TRUE(
      healthy.pump_until([&] { return healthy.all_subscribed(); }, std::chrono::seconds(10)));

  // From here `stalled` is not polled: its buffers fill, then the node's queue.
  // The stalled client can absorb about 2,500 (its own ZeroMQ queue of 1,000,
  // kernel buffers, the node's 1,100); the healthy ones have the same margin.
  constexpr unsigned kEvents = 5000;
  hc::Publisher pub(tcp(base));
  std::string payload(16 * 1024, 'p');
  std::uint64_t worst_us = 0;
  for (unsigned i = 0; i < kEvents; ++i) {
    const std::uint64_t t = now_us();
    std::memcpy(payload.data(), &t, sizeof(t));
    pub.publish(9, 1, payload);
    if (i % 10 == 0) {
      // Paced (about 4,000 events/s): a burst is not what this test is about.
      std::this_thread::sleep_for(std::chrono::microseconds(2500));
      healthy.pump();
      for (auto& s : healthy.sessions()) {
        if (s.events.empty()) continue;
        std::uint64_t sent = 0;
        std::memcpy(&sent, s.events.back().payload.data(), sizeof(sent));
        worst_us = std::max(worst_us, now_us() - sent);
      }
    }
  }
  ASSERT_TRUE(healthy.pump_until([&] { return healthy.events_received() >= 3 * kEvents; },
                                 std::chrono::seconds(30)))
      << "healthy sessions got " << healthy.events_received();
  for (auto& s : healthy.sessions()) {
    ASSERT_EQ(s.events.size(), kEvents);
    EXPECT_TRUE(s.closed.empty());
    ASSERT_EQ(stream_gap(s), "");
    ASSERT_EQ(s.stream.size(), kEvents + 1);  // SUBSCRIBED, then the events
  }
  ASSERT_TRUE(aio.wait_for_log("stopped reading", std::chrono::seconds(5))) << aio.log();

  // The stalled client, reading again, finds a gap-free prefix and then its reason.
  std::vector<hc::Event> got;
  std::optional<hc::SessionClosed> closed;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!closed && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    stalled.poll(msgs, std::chrono::milliseconds(100));
    for (auto& m : msgs) {
      if (auto* e = std::get_if<hc::Event>(&m)) {
        ASSERT_FALSE(closed) << "event after SESSION_CLOSED";
        got.push_back(*e);
      } else if (auto* c = std::get_if<hc::SessionClosed>(&m)) {
        closed = *c;
      }
    }
  }
  ASSERT_TRUE(closed) << "no SESSION_CLOSED after " << got.size() << " events";
  EXPECT_EQ(closed->code, 8u);  // SLOW_CONSUMER
  EXPECT_NE(closed->reason.find("queue full"), std::string::npos) << closed->reason;
  EXPECT_LT(got.size(), kEvents);
  // seq 1 was the SUBSCRIBED read above.
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq, i + 2);

  // Healthy sessions were never held up behind the stalled one (a blocked
  // node would have stalled them until the client timeout, 45 s).
  EXPECT_GT(worst_us, 0u);
  EXPECT_LE(worst_us, 2000000u);
  EXPECT_TRUE(aio.alive());
}

}  // namespace
}  // namespace hearth::test
