// Sessions across failures, with real processes: RESUME after a connection
// killed mid-burst, replay-buffer overflow, a session node restarted (nobody
// zombies), a guild node killed (GUILD_UNAVAILABLE, then SUBSCRIBED with
// refetch and a new epoch), and live SUBSCRIBE/UNSUBSCRIBE under load.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "cluster.hpp"
#include "hearth/protocol.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using protocol::Code;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// One connection's sessions, checked as a client must check them: every
// stream item's seq is the last one plus one.
struct Watcher {
  explicit Watcher(const std::string& endpoint) : client(endpoint) {}

  hc::SessionClient client;
  std::map<std::uint64_t, std::uint64_t> last_seq;  // session -> seq of its last stream item
  std::vector<hc::Message> all;                     // every message, in arrival order
  std::uint64_t gaps = 0;
  // Items between RESUME and RESUMED are ignored (docs/protocol.md, RESUME).
  std::set<std::uint64_t> resuming;

  void take(const hc::Message& m) {
    if (auto* r = std::get_if<hc::Resumed>(&m)) resuming.erase(r->session_id);
    if (auto* r = std::get_if<hc::Ready>(&m)) last_seq[r->session_id] = 0;
    if (auto pos = hc::stream_position(m)) {
      if (resuming.count(pos->session_id)) return;
      auto& last = last_seq[pos->session_id];
      if (pos->seq != last + 1) ++gaps;
      last = pos->seq;
    }
    all.push_back(m);
  }

  void pump(milliseconds wait = milliseconds(20)) {
    std::vector<hc::Message> batch;
    client.poll(batch, wait);
    for (const auto& m : batch) take(m);
  }

  // Pumps until a message of type T satisfying pred has been taken.
  template <class T, class Pred>
  std::optional<T> wait_for(Pred pred, milliseconds timeout = milliseconds(10000)) {
    const auto end = Clock::now() + timeout;
    std::size_t checked = 0;
    while (true) {
      for (; checked < all.size(); ++checked) {
        if (auto* m = std::get_if<T>(&all[checked]); m && pred(*m)) return *m;
      }
      if (Clock::now() > end) return std::nullopt;
      pump();
    }
  }

  hc::Ready identify(std::uint64_t request, std::uint64_t user,
                     const std::vector<std::uint64_t>& guilds) {
    client.identify(request, user, "token", guilds);
    auto ready = wait_for<hc::Ready>([&](const hc::Ready& r) { return r.request_id == request; });
    EXPECT_TRUE(ready) << "no READY for request " << request;
    std::set<std::uint64_t> want(guilds.begin(), guilds.end());
    const std::uint64_t sid = ready ? ready->session_id : 0;
    auto all_subscribed = [&](const hc::Subscribed& s) {
      if (s.session_id == sid && s.code == 0) want.erase(s.guild_id);
      return want.empty();
    };
    if (!want.empty()) {
      EXPECT_TRUE(wait_for<hc::Subscribed>(all_subscribed)) << "not subscribed";
    }
    return ready.value_or(hc::Ready{});
  }

  std::vector<hc::Event> events_of(std::uint64_t sid) const {
    std::vector<hc::Event> out;
    for (const auto& m : all) {
      if (auto* e = std::get_if<hc::Event>(&m); e && e->session_id == sid) out.push_back(*e);
    }
    return out;
  }
};

std::vector<std::string> cluster_broker_args(int base) {
  return {"broker", "--frontend",  tcp(base), "--backend", tcp(base + 1), "--node-timeout-ms",
          "1000",   "--log-level", "info",    "--insecure"};
}

std::vector<std::string> node_args(const std::string& name, const std::string& roles, int base,
                                   int listen) {
  return {"node",     "--name",         name,       "--roles",   roles,
          "--broker", tcp(base + 1),    "--listen", tcp(listen), "--shards",
          "2",        "--heartbeat-ms", "200",      "--insecure"};
}

TEST(Resume, ConnectionKilledMidBurstResumesWithNoGapOrDuplicate) {
  const int base = port_base();
  Process aio("resume-burst", all_in_one_args(base, {"--resume-buffer-events", "100000",
                                                     "--resume-buffer-bytes", "100000000"}));
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", seconds(10))) << aio.log();
  Watcher w(tcp(base + 2));
  const hc::Ready ready = w.identify(1, 42, {500});
  const std::uint64_t sid = ready.session_id;

  constexpr unsigned kEvents = 4000;
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    hc::Publisher pub(tcp(base));
    for (unsigned i = 1; i <= kEvents; ++i) {
      pub.publish(500, 7, "event-" + std::to_string(i), 0);
      if (i % 200 == 0) std::this_thread::sleep_for(milliseconds(5));  // ~40k/s: a burst
    }
    done = true;
  });
  // Mid-burst: drop the connection and RESUME on a new one from what was processed.
  ASSERT_TRUE(w.wait_for<hc::Event>([](const hc::Event& e) { return e.guild_seq >= 500; }));
  w.client.reconnect();
  const std::uint64_t last = w.last_seq[sid];
  w.resuming.insert(sid);
  w.client.resume(2, sid, ready.resume_token, last);
  auto resumed = w.wait_for<hc::Resumed>([&](const hc::Resumed& r) { return r.request_id == 2; });
  ASSERT_TRUE(resumed) << "no RESUMED";
  ASSERT_TRUE(w.wait_for<hc::Event>([](const hc::Event& e) { return e.guild_seq == kEvents; },
                                    seconds(20)));
  publisher.join();

  EXPECT_EQ(w.gaps, 0u);
  // Every event exactly once, in publish order, with the bytes the publisher sent.
  std::vector<hc::Event> events = w.events_of(sid);
  std::vector<std::uint64_t> guild_seqs;
  std::uint64_t epoch = events.empty() ? 0 : events.front().epoch;
  for (const auto& e : events) {
    guild_seqs.push_back(e.guild_seq);
    EXPECT_EQ(e.payload, "event-" + std::to_string(e.guild_seq));
    EXPECT_EQ(e.epoch, epoch);
  }
  std::vector<std::uint64_t> expected(kEvents);
  for (unsigned i = 0; i < kEvents; ++i) expected[i] = i + 1;
  EXPECT_EQ(guild_seqs, expected);
}

TEST(Resume, ReplayBufferOverflowGivesInvalidSession) {
  const int base = port_base() + 3;
  Process aio("resume-overflow",
              all_in_one_args(base, {"--resume-buffer-events", "16", "--client-heartbeat-ms", "300",
                                     "--client-timeout-ms", "600"}));
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", seconds(10))) << aio.log();
  hc::Publisher pub(tcp(base));

  // Attached to a connection that stopped reading: the RESUME from elsewhere
  // asks for items the buffer dropped. RESUME_GAP; the old connection is told.
  Watcher old_conn(tcp(base + 2));
  const hc::Ready a = old_conn.identify(1, 1, {600});
  for (int i = 0; i < 40; ++i) pub.publish(600, 1, "x", 0);
  std::this_thread::sleep_for(milliseconds(300));
  Watcher fresh(tcp(base + 2));
  fresh.client.resume(5, a.session_id, a.resume_token, 1);
  auto gap = fresh.wait_for<hc::InvalidSession>(
      [&](const hc::InvalidSession& s) { return s.request_id == 5; });
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->code, static_cast<std::uint32_t>(Code::kResumeGap));
  auto closed = old_conn.wait_for<hc::SessionClosed>(
      [&](const hc::SessionClosed& c) { return c.session_id == a.session_id; });
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, static_cast<std::uint32_t>(Code::kResumeGap));

  // Detached (the connection went silent) while the buffer overflowed: the
  // session is closed at once and a RESUME finds nothing.
  Watcher quiet(tcp(base + 2));
  const hc::Ready b = quiet.identify(1, 2, {601});
  std::this_thread::sleep_for(milliseconds(1500));  // past the client timeout: detached
  for (int i = 0; i < 40; ++i) pub.publish(601, 1, "y", 0);
  std::this_thread::sleep_for(milliseconds(300));
  quiet.client.resume(6, b.session_id, b.resume_token, 1);
  auto gone = quiet.wait_for<hc::InvalidSession>(
      [&](const hc::InvalidSession& s) { return s.request_id == 6; });
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->code, static_cast<std::uint32_t>(Code::kUnknownSession));

  // Within the buffer, the same silence resumes fine.
  Watcher ok(tcp(base + 2));
  const hc::Ready c = ok.identify(1, 3, {602});
  std::this_thread::sleep_for(milliseconds(1500));
  for (int i = 0; i < 10; ++i) pub.publish(602, 1, "z", 0);
  std::this_thread::sleep_for(milliseconds(300));
  ok.resuming.insert(c.session_id);
  ok.client.resume(7, c.session_id, c.resume_token, ok.last_seq[c.session_id]);
  auto resumed = ok.wait_for<hc::Resumed>([&](const hc::Resumed& r) { return r.request_id == 7; });
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->replayed, 10u);
  EXPECT_TRUE(ok.wait_for<hc::Event>([&](const hc::Event& e) { return e.guild_seq == 10; }));
  EXPECT_EQ(ok.gaps, 0u);
}

TEST(Resume, SessionNodeRestartedEveryClientLearnsAndNobodyZombies) {
  const int base = port_base() + 6;
  Process broker("restart-broker", cluster_broker_args(base));
  Process guild("restart-guild", node_args("guild-1", "guild", base, base + 3));
  auto session_node = std::make_unique<Process>("restart-session",
                                                node_args("session-1", "session", base, base + 2));
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 2 node(s)", seconds(10)))
      << broker.log();
  std::this_thread::sleep_for(milliseconds(300));  // the ring reaches the nodes

  constexpr int kClients = 12;
  std::vector<std::unique_ptr<Watcher>> clients;
  std::vector<hc::Ready> readies;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Watcher>(tcp(base + 2)));
    readies.push_back(clients.back()->identify(1, 100 + i, {700 + static_cast<unsigned>(i % 3)}));
  }
  session_node->kill_hard();
  session_node.reset();
  session_node = std::make_unique<Process>("restart-session",
                                           node_args("session-1", "session", base, base + 2));
  ASSERT_TRUE(session_node->wait_for_log("ring version", seconds(10))) << session_node->log();
  std::this_thread::sleep_for(milliseconds(1500));  // the broker has the new incarnation's ring

  // What a client does (docs/protocol.md, HEARTBEAT): heartbeat; fewer
  // sessions than it holds means RESUME; INVALID_SESSION means IDENTIFY again.
  int learned = 0;
  for (int i = 0; i < kClients; ++i) {
    Watcher& w = *clients[i];
    const auto deadline = Clock::now() + seconds(10);
    std::optional<hc::HeartbeatAck> ack;
    for (std::uint64_t nonce = 1; !ack && Clock::now() < deadline; ++nonce) {
      w.client.heartbeat(nonce);
      ack = w.wait_for<hc::HeartbeatAck>(
          [&](const hc::HeartbeatAck& a) { return a.nonce == nonce; }, milliseconds(500));
    }
    ASSERT_TRUE(ack) << "client " << i << " got no HEARTBEAT_ACK from the restarted node";
    EXPECT_EQ(ack->sessions, 0u) << "client " << i;
    w.client.resume(2, readies[i].session_id, readies[i].resume_token, 1);
    auto invalid = w.wait_for<hc::InvalidSession>(
        [&](const hc::InvalidSession& s) { return s.request_id == 2; });
    ASSERT_TRUE(invalid) << "client " << i;
    EXPECT_EQ(invalid->code, static_cast<std::uint32_t>(Code::kUnknownSession));
    w.identify(3, 100 + i, {700 + static_cast<unsigned>(i % 3)});
    ++learned;
  }
  EXPECT_EQ(learned, kClients);
  // And every new session receives what is published now.
  hc::Publisher pub(tcp(base));
  for (unsigned g = 700; g < 703; ++g) pub.publish(g, 1, "after-restart", 0);
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(clients[i]->wait_for<hc::Event>([](const hc::Event& e) {
      return e.payload == "after-restart";
    })) << "client "
        << i << " is a zombie";
  }
}

TEST(Resume, GuildNodeKilledSessionsAreToldThenResubscribedWithRefetch) {
  const int base = port_base() + 9;
  Process broker("kill-broker", cluster_broker_args(base));
  auto guild_a =
      std::make_unique<Process>("kill-guild-a", node_args("guild-a", "guild", base, base + 3));
  Process guild_b("kill-guild-b", node_args("guild-b", "guild", base, base + 4));
  Process session_node("kill-session", node_args("session-1", "session", base, base + 2));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 3 node(s)", seconds(10)))
      << broker.log();
  std::this_thread::sleep_for(milliseconds(300));  // the ring reaches the nodes
  std::vector<std::uint64_t> guilds;
  for (std::uint64_t g = 800; g < 820; ++g) guilds.push_back(g);
  Watcher w(tcp(base + 2));
  const hc::Ready ready = w.identify(1, 5, guilds);
  std::map<std::uint64_t, std::uint64_t> first_epoch;
  for (const auto& m : w.all) {
    if (auto* s = std::get_if<hc::Subscribed>(&m)) first_epoch[s->guild_id] = s->epoch;
  }
  ASSERT_EQ(first_epoch.size(), guilds.size());

  guild_a->kill_hard();
  guild_a.reset();
  // Within the broker's node timeout (1 s here) plus a ring broadcast.
  ASSERT_TRUE(w.wait_for<hc::GuildUnavailable>([](const hc::GuildUnavailable&) { return true; },
                                               seconds(5)));
  std::this_thread::sleep_for(milliseconds(1500));
  w.pump();
  std::set<std::uint64_t> lost, back;
  for (const auto& m : w.all) {
    if (auto* u = std::get_if<hc::GuildUnavailable>(&m)) {
      EXPECT_EQ(u->code, static_cast<std::uint32_t>(Code::kNoRoute));
      lost.insert(u->guild_id);
    }
  }
  EXPECT_FALSE(lost.empty());
  EXPECT_LT(lost.size(), guilds.size()) << "guild-b's guilds were not lost";
  auto all_back = [&](const hc::Subscribed& s) {
    if (s.refetch) {
      EXPECT_TRUE(lost.count(s.guild_id)) << "refetch for a guild that was not lost";
      EXPECT_NE(s.epoch, first_epoch[s.guild_id]) << "a moved guild keeps its epoch";
      EXPECT_EQ(s.request_id, 0u);
      back.insert(s.guild_id);
    }
    return back == lost;
  };
  EXPECT_TRUE(w.wait_for<hc::Subscribed>(all_back, seconds(10)));
  hc::Publisher pub(tcp(base));
  for (std::uint64_t g : lost) pub.publish(g, 1, "back", 0);
  std::set<std::uint64_t> heard;
  EXPECT_TRUE(w.wait_for<hc::Event>([&](const hc::Event& e) {
    heard.insert(e.guild_id);
    return heard == lost;
  }));
  EXPECT_EQ(w.gaps, 0u);
  (void)ready;
}

TEST(Resume, LiveSubscribeAndUnsubscribeUnderLoadKeepTheStreamGapFree) {
  const int base = port_base() + 12;
  Process aio("live-subs", all_in_one_args(base));
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", seconds(10))) << aio.log();
  Watcher w(tcp(base + 2));
  const hc::Ready ready = w.identify(1, 9, {900});
  const std::uint64_t sid = ready.session_id;
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    hc::Publisher pub(tcp(base));
    for (unsigned i = 0; !stop; ++i) {
      pub.publish(900 + i % 4, 1, "p", 0);
      if (i % 100 == 0) std::this_thread::sleep_for(milliseconds(2));
    }
  });
  // Guilds 901..903 come and go while all four are published to.
  for (std::uint64_t round = 0; round < 20; ++round) {
    const std::uint64_t g = 901 + round % 3;
    w.client.subscribe(100 + round, sid, {g});
    ASSERT_TRUE(w.wait_for<hc::Subscribed>(
        [&](const hc::Subscribed& s) { return s.request_id == 100 + round; }));
    std::this_thread::sleep_for(milliseconds(20));
    w.client.unsubscribe(200 + round, sid, {g});
    ASSERT_TRUE(w.wait_for<hc::Unsubscribed>(
        [&](const hc::Unsubscribed& u) { return u.request_id == 200 + round; }));
  }
  stop = true;
  publisher.join();
  w.pump(milliseconds(200));
  EXPECT_EQ(w.gaps, 0u);
  // No event of a guild outside its SUBSCRIBED .. UNSUBSCRIBED window.
  std::set<std::uint64_t> following = {900};
  std::uint64_t events_in_window = 0;
  for (const auto& m : w.all) {
    if (auto* s = std::get_if<hc::Subscribed>(&m); s && s->code == 0) following.insert(s->guild_id);
    if (auto* u = std::get_if<hc::Unsubscribed>(&m)) following.erase(u->guild_id);
    if (auto* e = std::get_if<hc::Event>(&m)) {
      EXPECT_TRUE(following.count(e->guild_id))
          << "event of guild " << e->guild_id << " outside its subscription, seq " << e->seq;
      if (e->guild_id != 900) ++events_in_window;
    }
  }
  EXPECT_GT(events_in_window, 0u) << "the load never reached a live subscription";
}

}  // namespace
}  // namespace hearth::test
