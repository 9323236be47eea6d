// Real processes on loopback: a broker, guild nodes and session nodes, and
// clients speaking the documented protocol through the client library.
#include <gtest/gtest.h>

#include "cluster.hpp"
#include "workload.hpp"

namespace hearth::test {
namespace {

std::vector<std::string> node_args(const std::string& name, const std::string& roles, int broker,
                                   int listen) {
  return {"node",      "--name",      name,        "--roles",
          roles,       "--broker",    tcp(broker), "--listen",
          tcp(listen), "--shards",    "2",         "--heartbeat-ms",
          "200",       "--log-level", "info",      "--stats-interval-ms",
          "1000",      "--insecure"};
}

TEST(Cluster, SeparateProcessesDeliverEveryEventExactlyOnceInOrder) {
  const int base = port_base();
  Process broker("broker",
                 {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1),
                  "--stats-interval-ms", "1000", "--node-timeout-ms", "5000", "--insecure"});
  Process g1("guild-1", node_args("guild-1", "guild", base + 1, base + 2));
  Process g2("guild-2", node_args("guild-2", "guild", base + 1, base + 3));
  Process s1("session-1", node_args("session-1", "session", base + 1, base + 4));
  Process s2("session-2", node_args("session-2", "session", base + 1, base + 5));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 4 node(s)", std::chrono::seconds(10)))
      << broker.log();
  Workload w;
  run_and_verify(w, tcp(base), {tcp(base + 4), tcp(base + 5)});
  for (Process* p : {&broker, &g1, &g2, &s1, &s2}) EXPECT_TRUE(p->alive());
  EXPECT_EQ(s1.stop(), 0) << s1.log();
  EXPECT_EQ(broker.stop(), 0) << broker.log();
}

TEST(Cluster, AllInOneDeliversEveryEventExactlyOnceInOrder) {
  const int base = port_base() + 6;
  Process aio("all-in-one", {"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1),
                             "--listen", tcp(base + 2), "--shards", "2"});
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s) of 1 node(s)", std::chrono::seconds(10)))
      << aio.log();
  Workload w;
  run_and_verify(w, tcp(base), {tcp(base + 2)});
  EXPECT_TRUE(aio.alive());
  EXPECT_EQ(aio.stop(), 0) << aio.log();
}

TEST(Cluster, LostGuildNodeLeavesTheRingAndItsSessionsMoveToTheSurvivor) {
  const int base = port_base() + 10;
  Process broker("broker-loss", {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1),
                                 "--node-timeout-ms", "1000", "--insecure"});
  Process g1("loss-guild-1", node_args("guild-1", "guild", base + 1, base + 2));
  Process g2("loss-guild-2", node_args("guild-2", "guild", base + 1, base + 3));
  Process s1("loss-session-1", node_args("session-1", "session", base + 1, base + 4));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 3 node(s)", std::chrono::seconds(10)));

  constexpr unsigned kGuilds = 20;
  std::vector<SessionRecord> records(60);
  for (unsigned i = 0; i < records.size(); ++i) {
    records[i].user = i + 1;
    records[i].guilds = {1 + i % kGuilds, 1 + (i * 7 + 3) % kGuilds};
    if (records[i].guilds[0] == records[i].guilds[1]) records[i].guilds.pop_back();
  }
  Fleet fleet({tcp(base + 4)}, 6, records);
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(20)));
  const auto before = fleet.subscribed_messages();

  g1.kill_hard();  // no goodbye: only missed heartbeats tell
  ASSERT_TRUE(broker.wait_for_log("node 'guild-1' missed its heartbeats", std::chrono::seconds(5)));
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 2 node(s)", std::chrono::seconds(5)));
  // Sessions whose guilds lived on guild-1 subscribe again at guild-2; wait
  // until no new SUBSCRIBED has arrived for a second.
  auto settled = std::chrono::steady_clock::now();
  auto seen = fleet.subscribed_messages();
  fleet.pump_until(
      [&] {
        if (fleet.subscribed_messages() != seen) {
          seen = fleet.subscribed_messages();
          settled = std::chrono::steady_clock::now();
        }
        return std::chrono::steady_clock::now() - settled > std::chrono::seconds(1);
      },
      std::chrono::seconds(15));
  EXPECT_GT(fleet.subscribed_messages(), before) << "no guild moved: was guild-1 empty?";

  client::Publisher pub(tcp(base));
  for (std::uint64_t g = 1; g <= kGuilds; ++g) pub.publish(g, 1, "after-" + std::to_string(g), g);
  std::vector<client::Message> acks;
  std::size_t acked = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (acked < kGuilds && std::chrono::steady_clock::now() < end) {
    acks.clear();
    pub.poll(acks, std::chrono::milliseconds(100));
    for (auto& m : acks) acked += std::holds_alternative<client::PublishAck>(m);
  }
  EXPECT_EQ(acked, kGuilds) << "publishes must succeed with one guild node left";
  std::uint64_t expected = 0;
  for (auto& s : fleet.sessions()) expected += s.guilds.size();
  fleet.pump_until([&] { return fleet.events_received() >= expected; }, std::chrono::seconds(10));
  fleet.pump(std::chrono::milliseconds(100));
  EXPECT_EQ(fleet.events_received(), expected);
  for (auto& s : fleet.sessions()) {
    ASSERT_EQ(s.events.size(), s.guilds.size()) << "session " << s.session_id;
    // The stream holds the SUBSCRIBEDs, any GUILD_UNAVAILABLE and re-SUBSCRIBED
    // of a moved guild, and the events, with no gap.
    EXPECT_EQ(stream_gap(s), "");
    for (const auto& e : s.events) {
      EXPECT_EQ(e.payload, "after-" + std::to_string(e.guild_id));
    }
  }
  EXPECT_TRUE(g2.alive());
  EXPECT_TRUE(s1.alive());
}

}  // namespace
}  // namespace hearth::test
