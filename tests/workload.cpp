#include "workload.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {

namespace hc = hearth::client;

struct Published {
  std::uint64_t guild;
  std::uint64_t guild_seq;
  std::string payload;
};

void run_and_verify(const Workload& w, const std::string& frontend,
                    const std::vector<std::string>& session_endpoints) {
  std::mt19937_64 rng(2024);
  std::vector<SessionRecord> records(w.sessions);
  for (unsigned i = 0; i < w.sessions; ++i) {
    records[i].user = 1000 + i;
    const unsigned n = w.min_guilds_per_session +
                       rng() % (w.max_guilds_per_session - w.min_guilds_per_session + 1);
    while (records[i].guilds.size() < n) {
      const std::uint64_t g = 1 + rng() % w.guilds;
      if (std::find(records[i].guilds.begin(), records[i].guilds.end(), g) ==
          records[i].guilds.end()) {
        records[i].guilds.push_back(g);
      }
    }
  }
  Fleet fleet(session_endpoints, w.connections_per_endpoint, std::move(records));
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(30)))
      << "not every session subscribed to all its guilds";
  ASSERT_TRUE(fleet.errors().empty()) << fleet.errors()[0].text;

  // Publishers run concurrently with the receiving loop below.
  std::vector<std::vector<Published>> published(w.publishers);
  std::atomic<unsigned> publishers_done{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < w.publishers; ++p) {
    threads.emplace_back([&, p] {
      hc::Publisher pub(frontend);
      std::mt19937_64 prng(p + 1);
      const unsigned count = w.events / w.publishers + (p < w.events % w.publishers ? 1 : 0);
      std::map<std::uint64_t, Published> by_ack;
      for (unsigned i = 0; i < count; ++i) {
        Published e;
        e.guild = 1 + prng() % w.guilds;
        e.payload = "pub" + std::to_string(p) + "-event" + std::to_string(i) + "-" +
                    std::string(40 + i % 60, static_cast<char>('a' + i % 26));
        pub.publish(e.guild, 7, e.payload, i + 1);
        by_ack.emplace(i + 1, std::move(e));
      }
      std::vector<hc::Message> replies;
      std::size_t acked = 0;
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (acked < count && std::chrono::steady_clock::now() < end) {
        replies.clear();
        pub.poll(replies, std::chrono::milliseconds(100));
        for (auto& m : replies) {
          if (auto* ack = std::get_if<hc::PublishAck>(&m)) {
            auto& e = by_ack.at(ack->ack_id);
            EXPECT_EQ(ack->guild_id, e.guild);
            e.guild_seq = ack->guild_seq;
            ++acked;
          } else if (auto* err = std::get_if<hc::ServerError>(&m)) {
            ADD_FAILURE() << "publish error " << hc::code_name(err->code) << ": " << err->text;
          }
        }
      }
      EXPECT_EQ(acked, count) << "publisher " << p << " missed acknowledgements";
      for (auto& [id, e] : by_ack) published[p].push_back(std::move(e));
      ++publishers_done;
    });
  }

  // What each guild sequenced, in guild order.
  std::uint64_t expected_total = 0;
  std::map<std::uint64_t, std::vector<const Published*>> by_guild;
  bool expectations_ready = false;
  auto build_expectations = [&] {
    for (auto& list : published) {
      for (auto& e : list) by_guild[e.guild].push_back(&e);
    }
    for (auto& [g, list] : by_guild) {
      std::sort(list.begin(), list.end(),
                [](auto* a, auto* b) { return a->guild_seq < b->guild_seq; });
    }
    for (auto& s : fleet.sessions()) {
      for (auto g : s.guilds) expected_total += by_guild[g].size();
    }
    expectations_ready = true;
  };
  auto last_progress = std::chrono::steady_clock::now();
  std::uint64_t last_count = 0;
  while (true) {
    fleet.pump(std::chrono::milliseconds(1));
    if (!expectations_ready && publishers_done == w.publishers) {
      for (auto& t : threads) t.join();
      build_expectations();
    }
    if (expectations_ready && fleet.events_received() >= expected_total) break;
    if (fleet.events_received() != last_count) {
      last_count = fleet.events_received();
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(20)) {
      break;  // nothing new for 20 s: check what we have
    }
  }
  if (!expectations_ready) {
    for (auto& t : threads) t.join();
    build_expectations();
  }
  fleet.pump(std::chrono::milliseconds(200));  // anything extra would be a duplicate

  EXPECT_EQ(fleet.events_received(), expected_total);
  std::size_t sessions_checked = 0;
  for (auto& s : fleet.sessions()) {
    ASSERT_TRUE(s.closed.empty()) << "session closed: " << s.closed[0].reason;
    // Per-session stream (SUBSCRIBEDs and events): 1, 2, 3, ... with no gaps.
    ASSERT_EQ(stream_gap(s), "") << "gap or repeat";
    ASSERT_EQ(s.stream.size(), s.guilds.size() + s.events.size()) << "session " << s.session_id;
    // Per guild: exactly the guild's events, in the guild's order, bytes untouched.
    std::map<std::uint64_t, std::vector<const hc::Event*>> got;
    for (auto& e : s.events) got[e.guild_id].push_back(&e);
    for (auto g : s.guilds) {
      const auto& want = by_guild[g];
      const auto& have = got[g];
      ASSERT_EQ(have.size(), want.size()) << "session " << s.session_id << " guild " << g;
      for (std::size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(have[i]->guild_seq, want[i]->guild_seq)
            << "session " << s.session_id << " guild " << g << " out of order at " << i;
        ASSERT_EQ(have[i]->payload, want[i]->payload);
        ASSERT_EQ(have[i]->kind, 7u);
      }
      got.erase(g);
    }
    EXPECT_TRUE(got.empty()) << "session " << s.session_id << " received another guild's events";
    ++sessions_checked;
  }
  EXPECT_EQ(sessions_checked, w.sessions);
}

}  // namespace hearth::test
