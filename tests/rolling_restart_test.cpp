// The headline of docs/reliability.md: a rolling restart loses nothing.
// Under steady acked publishing, every guild node and then every session node
// is drained (SIGTERM) and started again, one at a time. Clients follow
// docs/protocol.md ("RECONNECT: moving a session"): on RECONNECT they open a
// session on another node, take each guild's events from whichever session
// brings the next guild_seq, and LEAVE the old session once the new one has
// caught up. Every acknowledged event reaches every client exactly once, in
// order, in one epoch per guild, with no GUILD_UNAVAILABLE.
#include <gtest/gtest.h>

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

// One user's view of its guilds across session moves, as protocol.md's
// algorithm gives it: per guild the next guild_seq is delivered from either
// session, a repeat is dropped, and a later one waits for the gap to fill.
class Follower {
 public:
  Follower(std::uint64_t user, std::vector<std::uint64_t> guilds, std::vector<std::string> nodes,
           std::size_t first)
      : user_(user), guilds_(std::move(guilds)), nodes_(std::move(nodes)) {
    open(first);
  }

  void pump() {
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      msgs_.clear();
      sessions_[i].client->poll(msgs_, milliseconds(0));
      for (const auto& m : msgs_) handle(i, m);
    }
    // The old session has given all the new one lacks: leave it.
    if (sessions_.size() == 2 && caught_up()) {
      sessions_[0].client->leave(sessions_[0].sid);
      sessions_.erase(sessions_.begin());
      ++moves_;
    }
  }

  bool ready() const {
    return !sessions_.empty() && sessions_.back().subscribed.size() == guilds_.size();
  }
  std::uint64_t moves() const { return moves_; }
  std::vector<std::string> problems;
  std::map<std::uint64_t, std::vector<std::uint64_t>> delivered;  // guild -> guild_seqs
  std::map<std::uint64_t, std::uint64_t> epochs;                  // guild -> its one epoch

 private:
  struct Position {
    std::uint64_t epoch = 0, seq = 0;
  };
  struct Session {
    std::unique_ptr<hc::SessionClient> client;
    std::size_t node = 0;
    std::uint64_t sid = 0;
    std::map<std::uint64_t, Position> subscribed;  // where this session joined each guild
  };

  void open(std::size_t node) {
    Session s;
    s.node = node;
    s.client = std::make_unique<hc::SessionClient>(nodes_[node]);
    s.client->identify(++request_, user_, "t", guilds_);
    sessions_.push_back(std::move(s));
  }

  bool caught_up() const {
    const Session& next = sessions_[1];
    if (next.subscribed.size() != guilds_.size()) return false;
    for (const auto& [g, at] : next.subscribed) {
      auto it = last_.find(g);
      if (it == last_.end() || it->second.seq < at.seq) return false;
    }
    return true;
  }

  void deliver(std::uint64_t guild, std::uint64_t epoch, std::uint64_t seq) {
    Position& last = last_[guild];
    if (epoch != last.epoch) {
      problems.push_back("guild " + std::to_string(guild) + " changed epoch");
      return;
    }
    if (seq <= last.seq) return;  // the other session brought it already
    if (seq > last.seq + 1) {
      waiting_[guild].emplace(seq, epoch);
      return;
    }
    last.seq = seq;
    delivered[guild].push_back(seq);
    auto& w = waiting_[guild];
    while (!w.empty() && w.begin()->first <= last.seq + 1) {
      if (w.begin()->first == last.seq + 1) {
        last.seq = w.begin()->first;
        delivered[guild].push_back(last.seq);
      }
      w.erase(w.begin());
    }
  }

  void handle(std::size_t i, const hc::Message& m) {
    Session& s = sessions_[i];
    if (auto* r = std::get_if<hc::Ready>(&m)) {
      s.sid = r->session_id;
    } else if (auto* sub = std::get_if<hc::Subscribed>(&m)) {
      if (sub->code != 0 || sub->refetch) {
        problems.push_back("SUBSCRIBED code " + std::to_string(sub->code) + " refetch " +
                           std::to_string(sub->refetch));
        return;
      }
      s.subscribed[sub->guild_id] = {sub->epoch, sub->guild_seq};
      if (!last_.count(sub->guild_id)) {  // the very first session: start here
        last_[sub->guild_id] = {sub->epoch, sub->guild_seq};
        epochs[sub->guild_id] = sub->epoch;
      } else if (last_[sub->guild_id].epoch != sub->epoch) {
        problems.push_back("a new session joined guild " + std::to_string(sub->guild_id) +
                           " in another epoch");
      }
    } else if (auto* e = std::get_if<hc::Event>(&m)) {
      deliver(e->guild_id, e->epoch, e->guild_seq);
    } else if (auto* rc = std::get_if<hc::Reconnect>(&m)) {
      if (rc->session_id == s.sid && sessions_.size() == 1) {
        open((s.node + 1) % nodes_.size());  // another node
      }
    } else if (std::holds_alternative<hc::GuildUnavailable>(m)) {
      problems.push_back("GUILD_UNAVAILABLE");
    } else if (auto* c = std::get_if<hc::SessionClosed>(&m)) {
      if (c->code != static_cast<std::uint32_t>(protocol::Code::kClosedByClient)) {
        problems.push_back("SESSION_CLOSED " + std::to_string(c->code) + ": " + c->reason);
      }
    } else if (auto* err = std::get_if<hc::ServerError>(&m)) {
      problems.push_back("ERROR " + std::to_string(err->code) + ": " + err->text);
    }
  }

  std::uint64_t user_;
  std::vector<std::uint64_t> guilds_;
  std::vector<std::string> nodes_;
  std::vector<Session> sessions_;  // the current one first; a second while moving
  std::map<std::uint64_t, Position> last_;
  std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> waiting_;
  std::vector<hc::Message> msgs_;
  std::uint64_t request_ = 0;
  std::uint64_t moves_ = 0;
};

TEST(RollingRestart, EveryAcknowledgedEventReachesEveryClientOnceInOrder) {
  const int base = port_base() + 10;
  Process broker("rolling-broker", {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1),
                                    "--node-timeout-ms", "1500", "--insecure"});
  auto args = [&](const std::string& name, const std::string& roles, int listen) {
    return node_args(name, roles, base + 1, listen,
                     {"--drain-window-ms", "500", "--drain-timeout-ms", "8000"});
  };
  const int s1 = base + 2, s2 = base + 3;
  std::map<std::string, std::unique_ptr<Process>> nodes;
  auto start = [&](const std::string& name, const std::string& roles, int listen) {
    nodes[name] = std::make_unique<Process>("rolling-" + name, args(name, roles, listen));
  };
  start("guild-1", "guild", base + 4);
  start("guild-2", "guild", base + 5);
  start("session-1", "session", s1);
  start("session-2", "session", s2);
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 4 node(s)", seconds(10)))
      << broker.log();
  std::this_thread::sleep_for(milliseconds(300));

  std::vector<std::uint64_t> guilds;
  for (std::uint64_t g = 700; g < 716; ++g) guilds.push_back(g);
  std::vector<std::unique_ptr<Follower>> clients;
  for (std::uint64_t u = 0; u < 8; ++u) {
    std::vector<std::uint64_t> mine;  // half of the guilds each, overlapping
    for (std::size_t i = 0; i < guilds.size(); ++i) {
      if ((i + u) % 2 == 0) mine.push_back(guilds[i]);
    }
    clients.push_back(std::make_unique<Follower>(
        100 + u, mine, std::vector<std::string>{tcp(s1), tcp(s2)}, u % 2));
  }
  auto pump_all = [&] {
    for (auto& c : clients) c->pump();
  };
  const auto ready_by = std::chrono::steady_clock::now() + seconds(10);
  while (std::chrono::steady_clock::now() < ready_by &&
         !std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->ready(); })) {
    pump_all();
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->ready(); }));

  // At most 3,000 acked publishes/s until the restarts are over, then 1 s more.
  AckedPublisher publisher(tcp(base), guilds, 3000, seconds(90));
  std::vector<std::string> restart_log;
  std::thread restarts([&] {
    const std::vector<std::tuple<std::string, std::string, int>> order = {
        {"guild-1", "guild", base + 4},
        {"guild-2", "guild", base + 5},
        {"session-1", "session", s1},
        {"session-2", "session", s2}};
    for (const auto& [name, roles, listen] : order) {
      std::this_thread::sleep_for(milliseconds(1000));
      nodes[name]->drain();
      const int rc = nodes[name]->wait(seconds(10));
      restart_log.push_back(name + " exited " + std::to_string(rc));
      start(name, roles, listen);
      if (!broker.wait_for_log("node '" + name + "' joined", seconds(10))) {
        restart_log.push_back(name + " did not rejoin");
      }
    }
    std::this_thread::sleep_for(milliseconds(1000));
    publisher.stop_after(milliseconds(1000));
  });
  while (publisher.running()) {
    pump_all();
    std::this_thread::sleep_for(milliseconds(2));
  }
  restarts.join();
  publisher.join();
  for (int i = 0; i < 200; ++i) {
    pump_all();
    std::this_thread::sleep_for(milliseconds(5));
  }

  for (const std::string& line : restart_log) {
    EXPECT_NE(line.find("exited 0"), std::string::npos) << line;
  }
  const auto& errors = publisher.errors();
  auto acked = publisher.acked_by_guild();
  const std::uint64_t sent = publisher.sent();
  EXPECT_TRUE(errors.empty()) << "publish errors, first code "
                              << (errors.empty() ? 0 : errors.begin()->first);
  std::uint64_t acked_total = 0;
  for (const auto& [g, seqs] : acked) acked_total += seqs.size();
  EXPECT_EQ(acked_total, sent);
  std::uint64_t moves = 0;
  for (std::size_t u = 0; u < clients.size(); ++u) {
    Follower& c = *clients[u];
    moves += c.moves();
    EXPECT_TRUE(c.problems.empty()) << "client " << u << ": " << c.problems.size()
                                    << " problems, first: " << c.problems.front();
    for (const auto& [g, seqs] : c.delivered) {
      // Exactly once, in order, from where the client joined: consecutive.
      for (std::size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << "client " << u << " guild " << g;
      }
      std::uint64_t missing = 0;
      const std::set<std::uint64_t> got(seqs.begin(), seqs.end());
      for (std::uint64_t s : acked[g]) missing += got.count(s) ? 0 : 1;
      EXPECT_EQ(missing, 0u) << "client " << u << " guild " << g;
    }
  }
  // Every client moved at least once (each session node drained once).
  EXPECT_GE(moves, clients.size());
  EXPECT_GT(acked_total, 5000u);
}

}  // namespace
}  // namespace hearth::test
