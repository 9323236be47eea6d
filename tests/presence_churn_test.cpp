// Presence across real processes: 2,000 sessions in 20 guilds on two session
// nodes and two guild nodes; after 500 random disconnects (half of them
// reconnecting at once), every live session's view of every guild equals the
// truth.
#include <gtest/gtest.h>

#include <map>
#include <msgpack.hpp>
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
};

class PresenceFleet {
 public:
  PresenceFleet(const std::vector<std::string>& endpoints, std::size_t connections) {
    for (std::size_t c = 0; c < connections; ++c) {
      clients_.push_back(std::make_unique<hc::SessionClient>(endpoints[c % endpoints.size()]));
    }
  }
  std::size_t add(std::uint64_t user, std::vector<std::uint64_t> guilds, std::size_t connection) {
    Seat seat;
    seat.user = user;
    seat.guilds = std::move(guilds);
    seat.connection = connection;
    seats_.push_back(std::move(seat));
    const std::size_t i = seats_.size() - 1;
    by_request_[i + 1] = i;
    clients_[connection]->identify(i + 1, user, "t", seats_[i].guilds);
    return i;
  }
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
    if (auto* r = std::get_if<hc::Ready>(&m)) {
      const std::size_t i = by_request_.at(r->request_id);
      seats_[i].session = r->session_id;
      by_session_[r->session_id] = i;
    } else if (auto* s = std::get_if<hc::Subscribed>(&m)) {
      seats_[by_session_.at(s->session_id)].subscribed += s->code == 0;
    } else if (auto* e = std::get_if<hc::Event>(&m); e && e->kind == 201) {
      auto h = msgpack::unpack(e->payload.data(), e->payload.size());
      auto [user, status, activity, version] =
          h.get().as<std::tuple<std::uint64_t, unsigned, std::string, std::uint64_t>>();
      auto& guild = seats_[by_session_.at(e->session_id)].view[e->guild_id];
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
      ASSERT_FALSE(more) << "these guilds are under the snapshot limit";
      auto& view = seats_[by_session_.at(p->session_id)].view[guild];
      for (auto& [user, status, activity] : entries) view[user] = status;
    }
  }

  std::vector<std::unique_ptr<hc::SessionClient>> clients_;
  std::vector<Seat> seats_;
  std::map<std::uint64_t, std::size_t> by_request_, by_session_;
};

TEST(PresenceChurn, EverySessionsViewEqualsTheTruthAfterChurn) {
  const int base = port_base();
  Process broker("p-broker", {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1)});
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

}  // namespace
}  // namespace hearth::test
