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
                 {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1),
                  "--node-timeout-ms", "1000", "--log-level", "info", "--insecure"});
  auto node = [&](const std::string& name, const std::string& roles, int listen) {
    return std::vector<std::string>{"node",      "--name",    name,          "--roles",
                                    roles,       "--broker",  tcp(base + 1), "--listen",
                                    tcp(listen), "--shards",  "2",           "--heartbeat-ms",
                                    "200",       "--insecure"};
  };
  Process guild_a("fence-guild-a", node("guild-a", "guild", base + 3));
  Process guild_b("fence-guild-b", node("guild-b", "guild", base + 4));
  Process session_node("fence-session", node("session-1", "session", base + 2));
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
  std::mutex mu;
  std::vector<Position> acked;
  std::map<std::uint32_t, std::uint64_t> errors;
  std::atomic<bool> publishing{true};
  std::thread publisher([&] {
    hc::Publisher pub(tcp(base));
    std::vector<hc::Message> answers;
    const auto end = std::chrono::steady_clock::now() + seconds(5);
    std::uint64_t id = 0;
    auto collect = [&](milliseconds wait) {
      answers.clear();
      pub.poll(answers, wait);
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& a : answers) {
        if (auto* ack = std::get_if<hc::PublishAck>(&a)) {
          acked.emplace_back(ack->guild_id, ack->epoch, ack->guild_seq);
        }
        if (auto* err = std::get_if<hc::ServerError>(&a)) ++errors[err->code];
      }
    };
    while (std::chrono::steady_clock::now() < end) {
      ++id;
      pub.publish(guilds[id % guilds.size()], 1, "event-" + std::to_string(id), id);
      if (id % 20 == 0) collect(milliseconds(10));
      // Paced (at most ~5,000/s): the point is a hang under steady load, and
      // an unpaced flood under ASan starves tests running beside this one.
      if (id % 10 == 0) std::this_thread::sleep_for(milliseconds(2));
    }
    const auto drain_end = std::chrono::steady_clock::now() + seconds(4);
    while (std::chrono::steady_clock::now() < drain_end) collect(milliseconds(50));
    publishing = false;
  });
  std::thread hang([&] {
    std::this_thread::sleep_for(seconds(1));
    kill(guild_a.pid(), SIGSTOP);
    std::this_thread::sleep_for(milliseconds(2500));
    kill(guild_a.pid(), SIGCONT);
  });
  while (publishing) pump(milliseconds(20));
  hang.join();
  publisher.join();
  for (int i = 0; i < 50; ++i) pump(milliseconds(20));

  std::lock_guard<std::mutex> lock(mu);
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
  std::uint64_t refused = 0;
  for (const auto& [code, n] : errors) refused += n;
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
