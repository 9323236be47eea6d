// PUBLISH_ACK is fenced by ownership: a guild node that hangs (SIGSTOP) past
// the broker's node timeout, loses its guilds, and wakes up with publishes
// and acks queued never gets an ack through for an event its old members did
// not receive. Every acknowledged event reaches the subscribed session, or
// the session was told: it got SUBSCRIBED with refetch for that guild at a
// position past the event (the event was sequenced at the new owner before
// the session had re-subscribed there). With real processes: broker, two
// guild nodes, a session node.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "acked_publisher.hpp"
#include "cluster.hpp"
#include "hearth/protocol.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Fencing, AGuildNodeThatHungNeverAcksWhatItsMembersMissed) {
  const int base = port_base() + 15;
  Process broker("fence-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1),
                  "--node-timeout-ms", "1000", "--log-level", "info"});
  Process guild_a("fence-guild-a", node_args("guild-a", "guild", base + 1, base + 3));
  Process guild_b("fence-guild-b", node_args("guild-b", "guild", base + 1, base + 4));
  Process session_node("fence-session", node_args("session-1", "session", base + 1, base + 2));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 3 node(s)", seconds(10)))
      << broker.log();
  std::this_thread::sleep_for(milliseconds(300));

  std::vector<std::uint64_t> guilds;
  for (std::uint64_t g = 1000; g < 1020; ++g) guilds.push_back(g);
  hc::SessionClient client(tcp(base + 2));
  client.identify(1, 7, "t", guilds);
  using Position = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>;  // guild, epoch, seq
  std::set<Position> received;
  std::vector<Position> refetched;  // SUBSCRIBED with refetch: the state to reload is as of here
  std::uint64_t unavailable = 0, subscribed = 0;
  std::vector<hc::Message> msgs;
  auto pump = [&](milliseconds wait) {
    msgs.clear();
    client.poll(msgs, wait);
    for (const auto& m : msgs) {
      if (auto* e = std::get_if<hc::Event>(&m))
        received.emplace(e->guild_id, e->epoch, e->guild_seq);
      if (std::holds_alternative<hc::GuildUnavailable>(m)) ++unavailable;
      if (auto* s = std::get_if<hc::Subscribed>(&m); s && s->code == 0) {
        ++subscribed;
        if (s->refetch) refetched.emplace_back(s->guild_id, s->epoch, s->guild_seq);
      }
    }
  };
  for (int i = 0; i < 200 && subscribed < guilds.size(); ++i) pump(milliseconds(20));
  ASSERT_EQ(subscribed, guilds.size());

  // Acked publishes round-robin over the guilds, at most 5,000/s for 5 s; guild-a
  // hangs from 1 s to 3.5 s (the broker expires it after 1 s of silence).
  // Paced: the point is a hang under steady load, and an unpaced flood under
  // ASan starves tests running beside this one.
  AckedPublisher publisher(tcp(base), guilds, 5000, seconds(5));
  std::thread hang([&] {
    std::this_thread::sleep_for(seconds(1));
    kill(guild_a.pid(), SIGSTOP);
    std::this_thread::sleep_for(milliseconds(2500));
    kill(guild_a.pid(), SIGCONT);
  });
  while (publisher.running()) pump(milliseconds(20));
  hang.join();
  publisher.join();
  for (int i = 0; i < 50; ++i) pump(milliseconds(20));

  const auto& acked = publisher.acked();
  auto errors = publisher.errors();
  std::uint64_t missing = 0, covered_by_refetch = 0;
  for (const Position& p : acked) {
    if (received.count(p)) continue;
    const auto& [guild, epoch, seq] = p;
    bool told = false;
    for (const auto& [g, e, s] : refetched) told |= g == guild && e == epoch && s >= seq;
    if (told) {
      ++covered_by_refetch;
    } else {
      ++missing;
    }
  }
  const std::uint64_t refused = publisher.error_count();
  EXPECT_EQ(missing, 0u) << missing << " of " << acked.size()
                         << " acknowledged events never reached the subscribed session, and it "
                            "was not told to refetch ("
                         << covered_by_refetch << " were covered by a refetch)";
  EXPECT_GT(acked.size(), 1000u);
  // The fault was real: the session was told, and publishers got refusals.
  EXPECT_GT(unavailable, 0u) << "no GUILD_UNAVAILABLE while guild-a hung";
  EXPECT_GT(refused, 0u) << "every publish was acked through a 2.5 s hang";
  EXPECT_GT(errors[static_cast<std::uint32_t>(protocol::Code::kOwnerChanged)] +
                errors[static_cast<std::uint32_t>(protocol::Code::kNoRoute)],
            0u);
}

}  // namespace
}  // namespace hearth::test
