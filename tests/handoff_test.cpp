// Planned guild moves lose nothing (docs/reliability.md): a guild node that
// joins takes its guilds over by HANDOFF, and a guild node that drains
// (SIGTERM) hands all of its guilds over before it exits. Under steady acked
// publishing, the subscribed session receives every guild's events as one
// gap-free sequence in one epoch, with no GUILD_UNAVAILABLE, and every
// publish is acknowledged. Real processes: a broker, two guild nodes and a
// session node.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "acked_publisher.hpp"
#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::string> guild_node(const std::string& name, int broker_port, int listen_port) {
  return node_args(name, "guild", broker_port, listen_port, {"--drain-timeout-ms", "10000"});
}

TEST(Handoff, AJoiningAndADrainingGuildNodeLoseNothing) {
  const int base = port_base() + 5;
  Process broker("handoff-broker", {"broker", "--insecure", "--frontend", tcp(base), "--backend",
                                    tcp(base + 1), "--node-timeout-ms", "1500"});
  Process guild_a("handoff-guild-a", guild_node("guild-a", base + 1, base + 3));
  Process session_node("handoff-session", node_args("session-1", "session", base + 1, base + 2));
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 2 node(s)", seconds(10)))
      << broker.log();
  std::this_thread::sleep_for(milliseconds(300));

  std::vector<std::uint64_t> guilds;
  for (std::uint64_t g = 500; g < 532; ++g) guilds.push_back(g);
  hc::SessionClient client(tcp(base + 2));
  client.identify(1, 7, "t", guilds);
  std::map<std::uint64_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>> seen;  // epoch, seq
  std::uint64_t unavailable = 0, subscribed = 0, refetch = 0;
  std::vector<hc::Message> msgs;
  auto pump = [&](milliseconds wait) {
    msgs.clear();
    client.poll(msgs, wait);
    for (const auto& m : msgs) {
      if (auto* e = std::get_if<hc::Event>(&m))
        seen[e->guild_id].emplace_back(e->epoch, e->guild_seq);
      if (std::holds_alternative<hc::GuildUnavailable>(m)) ++unavailable;
      if (auto* s = std::get_if<hc::Subscribed>(&m); s && s->code == 0) {
        ++subscribed;
        refetch += s->refetch ? 1 : 0;
      }
    }
  };
  for (int i = 0; i < 250 && subscribed < guilds.size(); ++i) pump(milliseconds(20));
  ASSERT_EQ(subscribed, guilds.size());

  // About 2,500 acked publishes/s for 6 s.
  AckedPublisher publisher(tcp(base), guilds, 2500, seconds(6));
  // At 1.5 s guild-b joins (about half the guilds move to it); at 3.5 s
  // guild-a drains: every guild moves to guild-b, and guild-a exits.
  std::unique_ptr<Process> guild_b;
  int drain_status = -2;
  std::thread faults([&] {
    std::this_thread::sleep_for(milliseconds(1500));
    guild_b =
        std::make_unique<Process>("handoff-guild-b", guild_node("guild-b", base + 1, base + 4));
    std::this_thread::sleep_for(seconds(2));
    guild_a.drain();
    drain_status = guild_a.wait(seconds(8));
  });
  while (publisher.running()) pump(milliseconds(20));
  faults.join();
  publisher.join();
  for (int i = 0; i < 50; ++i) pump(milliseconds(20));

  EXPECT_EQ(drain_status, 0) << "the draining guild node did not exit cleanly\n" << guild_a.log();
  EXPECT_TRUE(broker.log().find("node 'guild-a' drained and left") != std::string::npos)
      << broker.log();
  const auto& errors = publisher.errors();
  EXPECT_TRUE(errors.empty()) << errors.size() << " kinds of publish errors, first code "
                              << (errors.empty() ? 0 : errors.begin()->first);
  auto acked = publisher.acked_by_guild();
  std::uint64_t acked_total = 0, missing = 0, gaps = 0, epochs = 0;
  for (std::uint64_t g : guilds) {
    const auto& got = seen[g];
    std::set<std::uint64_t> distinct_epochs;
    for (std::size_t i = 0; i < got.size(); ++i) {
      distinct_epochs.insert(got[i].first);
      if (got[i].second != i + 1) ++gaps;  // one sequence from 1, in order, no repeats
    }
    epochs += distinct_epochs.size() > 1 ? 1 : 0;
    std::set<std::uint64_t> received;
    for (const auto& [e, s] : got) received.insert(s);
    for (std::uint64_t s : acked[g]) {
      ++acked_total;
      if (!received.count(s)) ++missing;
    }
  }
  EXPECT_GT(acked_total, 5000u);
  EXPECT_EQ(acked_total, publisher.sent()) << "every publish is acknowledged through planned moves";
  EXPECT_EQ(missing, 0u) << "acknowledged events that never arrived";
  EXPECT_EQ(gaps, 0u) << "guild sequences with a gap, a repeat or a reordering";
  EXPECT_EQ(epochs, 0u) << "guilds whose epoch changed in a planned move";
  EXPECT_EQ(unavailable, 0u) << "GUILD_UNAVAILABLE in a planned move";
  EXPECT_EQ(refetch, 0u);
  EXPECT_TRUE(guild_b && guild_b->alive());
}

}  // namespace
}  // namespace hearth::test
