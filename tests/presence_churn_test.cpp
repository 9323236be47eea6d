// Presence across real processes: 2,000 sessions in 20 guilds on two session
// nodes and two guild nodes; after 500 random disconnects (half of them
// reconnecting at once), every live session's view of every guild equals the
// truth.
#include <gtest/gtest.h>

#include <map>
#include <msgpack.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using View = std::map<std::uint64_t, std::map<std::uint64_t, unsigned>>;  // guild -> user -> status

struct Seat {
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
  std::size_t connection = 0;
  std::uint64_t session = 0;  // 0 until READY
  bool live = true;
  std::size_t subscribed = 0;
  View view;
  // Paging (one guild): the last page's cursor, whether more follow, pages held.
  std::uint64_t cursor = 0;
  bool more = false;
  std::size_t pages = 0;
  std::uint64_t version = 0;  // the guild's presence version last seen
  // Resuming, and what the session was told about others and about itself.
  std::string token;
  std::uint64_t last_seq = 0;
  std::size_t resumed = 0;
  std::size_t updates = 0;                // PRESENCE_UPDATEs received
  std::map<std::uint64_t, unsigned> own;  // guild -> own status (207)
};

class PresenceFleet {
 public:
  PresenceFleet(const std::vector<std::string>& endpoints, std::size_t connections) {
    for (std::size_t c = 0; c < connections; ++c) {
      clients_.push_back(std::make_unique<hc::SessionClient>(endpoints[c % endpoints.size()]));
    }
  }
  std::size_t add(std::uint64_t user, std::vector<std::uint64_t> guilds, std::size_t connection,
                  std::optional<hc::InitialPresence> presence = std::nullopt) {
    Seat seat;
    seat.user = user;
    seat.guilds = std::move(guilds);
    seat.connection = connection;
    seats_.push_back(std::move(seat));
    const std::size_t i = seats_.size() - 1;
    by_request_[i + 1] = i;
    clients_[connection]->identify(i + 1, user, "t", seats_[i].guilds, presence);
    return i;
  }
  // Drops a connection and RESUMEs its live sessions on a new one.
  void reconnect_and_resume(std::size_t connection) {
    clients_[connection]->reconnect();
    for (auto& seat : seats_) {
      if (seat.live && seat.connection == connection) {
        clients_[connection]->resume(1, seat.session, seat.token, seat.last_seq);
      }
    }
  }
  void send(std::size_t i, std::uint64_t kind, const std::string& payload) {
    clients_[seats_[i].connection]->plugin_message(seats_[i].session, kind, payload);
  }
  void allow_pages() { single_page_ = false; }
  std::size_t version_errors = 0;
  void leave(std::size_t i) {
    seats_[i].live = false;
    clients_[seats_[i].connection]->leave(seats_[i].session);
  }
  // Returns messages handled.
  std::size_t pump() {
    std::size_t n = 0;
    std::vector<hc::Message> msgs;
    for (auto& c : clients_) {
      msgs.clear();
      n += c->poll(msgs, std::chrono::milliseconds(0));
      for (auto& m : msgs) handle(m);
    }
    return n;
  }
  template <class Pred>
  bool pump_until(Pred pred, std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      if (pump() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  // Pumps until nothing has arrived for `quiet`.
  void settle(std::chrono::milliseconds quiet, std::chrono::seconds limit) {
    auto last = std::chrono::steady_clock::now();
    const auto end = last + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pump() > 0) {
        last = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last > quiet) {
        return;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }
  bool all_subscribed() const {
    for (const auto& s : seats_) {
      if (s.live && s.subscribed < s.guilds.size()) return false;
    }
    return true;
  }
  void heartbeat() {
    for (auto& c : clients_) c->heartbeat();
  }
  std::vector<Seat>& seats() { return seats_; }

 private:
  void handle(hc::Message& m) {
    if (auto pos = hc::stream_position(m))
      seats_[by_session_.at(pos->session_id)].last_seq = pos->seq;
    if (auto* r = std::get_if<hc::Ready>(&m)) {
      const std::size_t i = by_request_.at(r->request_id);
      seats_[i].session = r->session_id;
      seats_[i].token = r->resume_token;
      by_session_[r->session_id] = i;
    } else if (auto* resumed = std::get_if<hc::Resumed>(&m)) {
      ++seats_[by_session_.at(resumed->session_id)].resumed;
    } else if (auto* own = std::get_if<hc::PluginMessage>(&m); own && own->kind == 207) {
      auto h = msgpack::unpack(own->payload.data(), own->payload.size());
      auto [guild, status, activity] =
          h.get().as<std::tuple<std::uint64_t, unsigned, std::string>>();
      seats_[by_session_.at(own->session_id)].own[guild] = status;
    } else if (auto* s = std::get_if<hc::Subscribed>(&m)) {
      seats_[by_session_.at(s->session_id)].subscribed += s->code == 0;
    } else if (auto* e = std::get_if<hc::Event>(&m); e && e->kind == 201) {
      auto h = msgpack::unpack(e->payload.data(), e->payload.size());
      auto [user, status, activity, version] =
          h.get().as<std::tuple<std::uint64_t, unsigned, std::string, std::uint64_t>>();
      Seat& seat = seats_[by_session_.at(e->session_id)];
      ++seat.updates;
      if (version <= seat.version) ++version_errors;  // versions only grow
      seat.version = version;
      auto& guild = seat.view[e->guild_id];
      if (status == 0) {
        guild.erase(user);
      } else {
        guild[user] = status;
      }
    } else if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == 202) {
      auto h = msgpack::unpack(p->payload.data(), p->payload.size());
      auto [guild, online, after, more, entries, version] =
          h.get()
              .as<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, bool,
                             std::vector<std::tuple<std::uint64_t, unsigned, std::string>>,
                             std::uint64_t>>();
      if (single_page_) {
        ASSERT_FALSE(more) << "these guilds are under the snapshot limit";
      }
      Seat& seat = seats_[by_session_.at(p->session_id)];
      if (version < seat.version) ++version_errors;  // a page older than an update held
      seat.version = version;
      auto& view = seat.view[guild];
      for (auto& [user, status, activity] : entries) {
        if (user <= after) ++version_errors;  // a page lists only users above its cursor
        view[user] = status;
      }
      seat.more = more;
      if (!entries.empty()) seat.cursor = std::get<0>(entries.back());
      ++seat.pages;
    }
  }

  std::vector<std::unique_ptr<hc::SessionClient>> clients_;
  std::vector<Seat> seats_;
  std::map<std::uint64_t, std::size_t> by_request_, by_session_;
  bool single_page_ = true;
};

TEST(PresenceChurn, EverySessionsViewEqualsTheTruthAfterChurn) {
  const int base = port_base();
  Process broker("p-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1)});
  Process g1("p-guild-1", presence_node_args("guild-1", "guild", base + 1, base + 2, 300));
  Process g2("p-guild-2", presence_node_args("guild-2", "guild", base + 1, base + 3, 300));
  Process s1("p-session-1", presence_node_args("session-1", "session", base + 1, base + 4, 300));
  Process s2("p-session-2", presence_node_args("session-2", "session", base + 1, base + 5, 300));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 4 node(s)", std::chrono::seconds(10)));

  constexpr unsigned kSessions = 2000, kGuilds = 20, kChurn = 500;
  PresenceFleet fleet({tcp(base + 4), tcp(base + 5)}, 40);
  std::mt19937_64 rng(7);
  for (unsigned i = 0; i < kSessions; ++i) {
    // 1,600 users; 400 of them on a second device with the same guilds.
    const std::uint64_t user = 1 + i % 1600;
    std::vector<std::uint64_t> guilds = {1 + user % kGuilds, 1 + (user * 7 + 3) % kGuilds};
    if (guilds[0] == guilds[1]) guilds.pop_back();
    fleet.add(user, guilds, i % 40);
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(60)));
  fleet.settle(std::chrono::milliseconds(1000), std::chrono::seconds(60));

  // Churn: 500 random live sessions leave; half come straight back.
  std::vector<std::size_t> back;
  for (unsigned n = 0; n < kChurn; ++n) {
    std::size_t i;
    do {
      i = rng() % fleet.seats().size();
    } while (!fleet.seats()[i].live || fleet.seats()[i].session == 0);
    fleet.leave(i);
    if (n % 2 == 0) back.push_back(i);
    if (n % 50 == 0) fleet.pump();
  }
  for (std::size_t i : back) {
    const Seat& old = fleet.seats()[i];
    fleet.add(old.user, old.guilds, old.connection);
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(60)));
  fleet.heartbeat();
  fleet.settle(std::chrono::milliseconds(1500), std::chrono::seconds(60));  // > grace period

  // The truth: a user is online in a guild while any live session of theirs is in it.
  std::map<std::uint64_t, std::set<std::uint64_t>> online;
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) online[g].insert(s.user);
  }
  std::size_t checked = 0;
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) {
      std::set<std::uint64_t> seen;
      for (const auto& [user, status] :
           s.view.count(g) ? s.view.at(g) : std::map<std::uint64_t, unsigned>{}) {
        if (user != s.user) seen.insert(user);
      }
      std::set<std::uint64_t> truth = online[g];
      truth.erase(s.user);
      ASSERT_EQ(seen, truth) << "session " << s.session << " of user " << s.user << ", guild " << g;
      ++checked;
    }
  }
  EXPECT_GT(checked, 3000u);
  for (Process* p : {&broker, &g1, &g2, &s1, &s2}) EXPECT_TRUE(p->alive());
}

TEST(PresenceChurn, PagesPlusUpdatesEqualTheTruthWhileMembersJoinAndLeave) {
  // One guild above the full-list limit (30) with pages of 8: 30 watchers page
  // through it by cursor while members join, leave and change status between
  // their page requests. At the end, each watcher's view (pages applied, then
  // updates, in arrival order) equals the truth.
  const int base = port_base() + 50;
  Process node("paging",
               all_in_one_args(
                   base, {"--plugin", std::string("presence=") + HEARTH_PRESENCE_PLUGIN,
                          "--plugin-required", "presence", "--plugin-option",
                          "presence.grace_ms=300", "--plugin-option", "presence.min_interval_ms=50",
                          "--plugin-option", "presence.snapshot_full_limit=30", "--plugin-option",
                          "presence.snapshot_page=8"}));
  ASSERT_TRUE(node.wait_for_log("with 1 guild node(s)", std::chrono::seconds(10))) << node.log();
  PresenceFleet fleet({tcp(base + 2)}, 20);
  fleet.allow_pages();
  std::mt19937_64 rng(13);
  std::map<std::uint64_t, std::size_t> member_of;  // user -> live seat
  std::map<std::uint64_t, unsigned> status_of;     // user -> last status set (1 if none)
  for (std::uint64_t user = 2; user <= 160; user += 2) {
    member_of[user] = fleet.add(user, {1}, user % 20);
    status_of[user] = 1;
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
  fleet.settle(std::chrono::milliseconds(300), std::chrono::seconds(30));

  std::vector<std::size_t> watchers;
  for (std::uint64_t w = 0; w < 30; ++w) watchers.push_back(fleet.add(1000 + w, {1}, w % 20));
  ASSERT_TRUE(fleet.pump_until(
      [&] {
        for (auto i : watchers) {
          if (fleet.seats()[i].pages == 0) return false;
        }
        return true;
      },
      std::chrono::seconds(30)));

  auto set_status = [&](std::size_t seat, unsigned status) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(status, std::string()));
    fleet.send(seat, 200, std::string(b.data(), b.size()));
  };
  std::size_t joins = 0, leaves = 0, sets = 0, rounds = 0;
  for (; rounds < 40; ++rounds) {
    std::vector<std::size_t> asking;
    for (auto i : watchers) {
      Seat& w = fleet.seats()[i];
      if (!w.more) continue;
      msgpack::sbuffer b;
      msgpack::pack(b, std::make_tuple(std::uint64_t{1}, w.cursor));
      fleet.send(i, 204, std::string(b.data(), b.size()));
      asking.push_back(i);
    }
    if (asking.empty()) break;
    // Churn between the requests and their answers: 3 leave, 3 join, 3 set.
    for (int k = 0; k < 3; ++k) {
      auto it = member_of.begin();
      std::advance(it, rng() % member_of.size());
      fleet.leave(it->second);
      status_of.erase(it->first);
      member_of.erase(it);
      ++leaves;
      std::uint64_t user;
      do {
        user = 1 + rng() % 199;
      } while (member_of.count(user));
      member_of[user] = fleet.add(user, {1}, user % 20);
      status_of[user] = 1;
      ++joins;
      auto s = member_of.begin();
      std::advance(s, rng() % member_of.size());
      if (fleet.seats()[s->second].session != 0) {
        const unsigned status = 1 + rng() % 4;
        set_status(s->second, status);
        status_of[s->first] = status;
        ++sets;
      }
    }
    std::map<std::size_t, std::size_t> before;
    for (auto i : asking) before[i] = fleet.seats()[i].pages;
    ASSERT_TRUE(fleet.pump_until(
        [&] {
          for (auto i : asking) {
            if (fleet.seats()[i].pages == before[i]) return false;
          }
          return true;
        },
        std::chrono::seconds(10)));
  }
  EXPECT_GT(rounds, 5u) << "several pages each, with churn between them";
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
  fleet.heartbeat();
  fleet.settle(std::chrono::milliseconds(1000), std::chrono::seconds(30));  // > grace + floor

  std::map<std::uint64_t, unsigned> truth;  // what others should see
  for (const auto& [user, status] : status_of) {
    if (status != 4) truth[user] = status;
  }
  for (auto i : watchers) truth[fleet.seats()[i].user] = 1;
  std::size_t mismatches = 0;
  for (auto i : watchers) {
    const Seat& w = fleet.seats()[i];
    EXPECT_FALSE(w.more);
    std::map<std::uint64_t, unsigned> expected = truth;
    expected.erase(w.user);
    const auto& seen = w.view.count(1) ? w.view.at(1) : std::map<std::uint64_t, unsigned>{};
    if (seen != expected) {
      ++mismatches;
      ADD_FAILURE() << "watcher " << w.user << " sees " << seen.size() << " members, truth "
                    << expected.size();
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(fleet.version_errors, 0u);
  EXPECT_GT(joins + leaves + sets, 100u);
  EXPECT_TRUE(node.alive());
}

TEST(PresenceChurn, AReconnectStormWithEveryStatusShowsNothing) {
  // 400 users in 5 guilds, each identified with a random status (online, idle,
  // dnd, invisible). Then a storm: the sessions of 20 of 40 connections lose
  // their connection and RESUME on a new one; on the other 20 half the users
  // LEAVE and IDENTIFY again with the same presence, within the grace period.
  // Nobody may see anything: not one PRESENCE_UPDATE, during the storm or
  // after the grace period. Every view, own status included, equals the truth.
  const int base = port_base() + 60;
  Process node("storm",
               all_in_one_args(base, {"--plugin", std::string("presence=") + HEARTH_PRESENCE_PLUGIN,
                                      "--plugin-required", "presence", "--plugin-option",
                                      "presence.grace_ms=1500", "--plugin-option",
                                      "presence.min_interval_ms=100"}));
  ASSERT_TRUE(node.wait_for_log("with 1 guild node(s)", std::chrono::seconds(10))) << node.log();
  constexpr std::size_t kConnections = 40;
  PresenceFleet fleet({tcp(base + 2)}, kConnections);
  std::mt19937_64 rng(21);
  std::map<std::uint64_t, unsigned> status_of;
  for (std::uint64_t user = 1; user <= 400; ++user) {
    std::vector<std::uint64_t> guilds = {1 + user % 5, 1 + (user * 3 + 1) % 5};
    if (guilds[0] == guilds[1]) guilds.pop_back();
    const unsigned status = 1 + rng() % 4;
    status_of[user] = status;
    fleet.add(user, guilds, user % kConnections, hc::InitialPresence{status, "s"});
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
  fleet.settle(std::chrono::milliseconds(500), std::chrono::seconds(30));
  std::size_t before = 0;
  for (const Seat& s : fleet.seats()) before += s.updates;

  std::vector<std::size_t> resuming;
  for (std::size_t c = 0; c < kConnections / 2; ++c) fleet.reconnect_and_resume(c);
  for (std::size_t i = 0; i < fleet.seats().size(); ++i) {
    if (fleet.seats()[i].connection < kConnections / 2) resuming.push_back(i);
  }
  const std::size_t seats = fleet.seats().size();
  std::size_t reidentified = 0;
  for (std::size_t i = 0; i < seats; ++i) {
    const Seat old = fleet.seats()[i];
    if (old.connection < kConnections / 2 || old.user % 2 != 0) continue;
    fleet.leave(i);
    fleet.add(old.user, old.guilds, old.connection, hc::InitialPresence{status_of[old.user], "s"});
    ++reidentified;
  }
  ASSERT_TRUE(fleet.pump_until(
      [&] {
        for (auto i : resuming) {
          if (fleet.seats()[i].resumed == 0) return false;
        }
        return fleet.all_subscribed();
      },
      std::chrono::seconds(30)));
  fleet.heartbeat();
  fleet.settle(std::chrono::milliseconds(2000), std::chrono::seconds(30));  // > grace period

  std::size_t after = 0;
  for (const Seat& s : fleet.seats()) after += s.updates;
  EXPECT_EQ(after, before) << "a reconnect within the grace period showed something";
  EXPECT_GT(reidentified, 50u);
  std::map<std::uint64_t, std::map<std::uint64_t, unsigned>> truth;  // guild -> user -> shown
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) {
      if (status_of[s.user] != 4) truth[g][s.user] = status_of[s.user];
    }
  }
  std::size_t mismatches = 0, checked = 0;
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) {
      auto expected = truth[g];
      expected.erase(s.user);
      const auto seen = s.view.count(g) ? s.view.at(g) : std::map<std::uint64_t, unsigned>{};
      const unsigned own = s.own.count(g) ? s.own.at(g) : 0;
      if (seen != expected || own != status_of[s.user]) {
        if (++mismatches <= 5) {
          ADD_FAILURE() << "session of user " << s.user << " in guild " << g << ": sees "
                        << seen.size() << " of " << expected.size() << ", own " << own << " vs "
                        << status_of[s.user];
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(checked, 500u);
  EXPECT_TRUE(node.alive());
}

}  // namespace
}  // namespace hearth::test

namespace hearth::test {
namespace {

TEST(PresenceChurn, AcrossSessionNodesEveryViewAndOwnStatusEqualsTheTruth) {
  // 150 users with two devices each, one on each session node, following
  // different guilds (6 guilds on two guild nodes). Eight rounds: 30 users
  // set a status on a random device, 10 devices LEAVE and IDENTIFY again
  // without presence, and one connection drops and RESUMEs. A user's status is
  // the last one set on any device: at the end every session's view of every
  // guild, and its own status (207) in each, equals that truth.
  const int base = port_base() + 70;
  Process broker("x-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1)});
  auto args = [&](const std::string& name, const std::string& roles, int port) {
    auto a = presence_node_args(name, roles, base + 1, port, 300);
    a.insert(a.end(), {"--plugin-option", "presence.min_interval_ms=100"});
    return a;
  };
  Process g1("x-guild-1", args("guild-1", "guild", base + 2));
  Process g2("x-guild-2", args("guild-2", "guild", base + 3));
  Process s1("x-session-1", args("session-1", "session", base + 4));
  Process s2("x-session-2", args("session-2", "session", base + 5));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 4 node(s)", std::chrono::seconds(10)));

  constexpr std::size_t kConnections = 10;  // even ones on session-1, odd ones on session-2
  PresenceFleet fleet({tcp(base + 4), tcp(base + 5)}, kConnections);
  std::mt19937_64 rng(31);
  std::map<std::uint64_t, unsigned> status_of;
  std::map<std::uint64_t, std::vector<std::size_t>> devices;  // user -> live seats
  for (std::uint64_t user = 1; user <= 150; ++user) {
    const unsigned status = 1 + rng() % 4;
    status_of[user] = status;
    const std::size_t home = (user % 5) * 2;
    devices[user].push_back(
        fleet.add(user, {1 + user % 6}, home, hc::InitialPresence{status, "s"}));
    std::vector<std::uint64_t> other = {1 + (user * 5 + 2) % 6, 1 + (user * 7 + 1) % 6};
    if (other[0] == other[1]) other.pop_back();
    devices[user].push_back(fleet.add(user, other, home + 1));
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
  fleet.settle(std::chrono::milliseconds(300), std::chrono::seconds(30));

  std::size_t sets = 0, reidentified = 0;
  for (int round = 0; round < 8; ++round) {
    // A dropped connection RESUMEs first: plugin messages (207) sent while a
    // session is detached are not replayed (docs/presence.md), so the sets
    // follow once it is back.
    ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
    const std::size_t dropped = rng() % kConnections;
    std::map<std::size_t, std::size_t> resumed_before;
    for (std::size_t i = 0; i < fleet.seats().size(); ++i) {
      const Seat& s = fleet.seats()[i];
      if (s.live && s.connection == dropped) resumed_before[i] = s.resumed;
    }
    fleet.reconnect_and_resume(dropped);
    ASSERT_TRUE(fleet.pump_until(
        [&] {
          for (const auto& [i, n] : resumed_before) {
            if (fleet.seats()[i].resumed == n) return false;
          }
          return true;
        },
        std::chrono::seconds(10)));
    std::set<std::uint64_t> chosen;
    while (chosen.size() < 30) chosen.insert(1 + rng() % 150);
    for (std::uint64_t user : chosen) {
      const auto& seats = devices[user];
      const std::size_t seat = seats[rng() % seats.size()];
      if (fleet.seats()[seat].session == 0) continue;
      const unsigned status = 1 + rng() % 4;
      msgpack::sbuffer b;
      msgpack::pack(b, std::make_tuple(status, std::string("r") + std::to_string(round)));
      fleet.send(seat, 200, std::string(b.data(), b.size()));
      status_of[user] = status;
      ++sets;
    }
    for (int k = 0; k < 10; ++k) {
      auto& seats = devices[1 + rng() % 150];
      const std::size_t pick = rng() % seats.size();
      const Seat old = fleet.seats()[seats[pick]];
      if (old.session == 0) continue;
      fleet.leave(seats[pick]);
      seats[pick] = fleet.add(old.user, old.guilds, old.connection);
      ++reidentified;
    }
    // Apart enough that one user's sets on different nodes keep their order.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
    while (std::chrono::steady_clock::now() < until) fleet.pump();
  }
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)));
  fleet.heartbeat();
  fleet.settle(std::chrono::milliseconds(1500), std::chrono::seconds(30));  // > grace + floor

  std::map<std::uint64_t, std::map<std::uint64_t, unsigned>> truth;  // guild -> user -> shown
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) {
      if (status_of[s.user] != 4) truth[g][s.user] = status_of[s.user];
    }
  }
  std::size_t mismatches = 0, checked = 0;
  for (const Seat& s : fleet.seats()) {
    if (!s.live) continue;
    for (auto g : s.guilds) {
      auto expected = truth[g];
      expected.erase(s.user);
      const auto seen = s.view.count(g) ? s.view.at(g) : std::map<std::uint64_t, unsigned>{};
      const unsigned own = s.own.count(g) ? s.own.at(g) : 0;
      if (seen != expected || own != status_of[s.user]) {
        if (++mismatches <= 5) {
          std::size_t wrong = 0;
          for (const auto& [u, st] : expected) wrong += !seen.count(u) || seen.at(u) != st;
          ADD_FAILURE() << "session of user " << s.user << " in guild " << g << ": sees "
                        << seen.size() << " of " << expected.size() << " (" << wrong
                        << " wrong), own " << own << " vs " << status_of[s.user];
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(checked, 400u);
  EXPECT_GT(sets, 200u);
  EXPECT_GT(reidentified, 50u);
  for (Process* p : {&broker, &g1, &g2, &s1, &s2}) EXPECT_TRUE(p->alive());
}

}  // namespace
}  // namespace hearth::test
