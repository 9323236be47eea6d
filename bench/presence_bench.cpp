// Presence at scale: N sessions of one guild come online together. Reports
// how long until every session has seen every other come online, how many
// PRESENCE_UPDATEs the guild sent against the minimum (one per user), and the
// presence deliveries per second. Broker and node run in this process with
// the presence plugin, as in `hearth all-in-one`.
//
//   build/bench/hearth_presence_bench [sessions=10000] [connections=100] [pages]
//
// HEARTH_BENCH_PORT (default 17410) moves its two loopback ports (that port
// and the one 100 above it), so that benches on a shared machine do not meet.
// HEARTH_BENCH_IDENTIFY_PRESENCE=1 makes every IDENTIFY carry presence
// [1, ""] (online), as a protocol v2 client restoring its status does.
// Without `pages`, sessions keep the first snapshot page (the count and up to
// 100 members in a large guild), as a client showing a big guild would; with
// it, every session fetches every page (the worst case).
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>

#include "bench/in_process_cluster.hpp"
#include "hearth/client.hpp"

using namespace hearth;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const unsigned sessions = argc > 1 ? std::atoi(argv[1]) : 10000;
  const unsigned connections = argc > 2 ? std::atoi(argv[2]) : 100;
  const bool all_pages = argc > 3 && std::string(argv[3]) == "pages";
  spdlog::set_level(spdlog::level::warn);

  const char* port_env = std::getenv("HEARTH_BENCH_PORT");
  const int port = port_env ? std::atoi(port_env) : 17410;
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(port + 100);
  NodeConfig nc;
  nc.shards = 2;
  nc.subscribe_permits = 1024;
  nc.plugins.push_back({"presence", HEARTH_PRESENCE_PLUGIN, true, {{"grace_ms", "5000"}}});
  bench::InProcessCluster cluster("tcp://127.0.0.1:" + std::to_string(port), listen, nc);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  std::vector<std::unique_ptr<client::SessionClient>> clients;
  for (unsigned c = 0; c < connections; ++c) {
    clients.push_back(std::make_unique<client::SessionClient>(listen));
  }
  // Done when every session knows all N users are online, from its snapshot
  // or from updates (a bit per user per session).
  std::vector<client::Message> msgs;
  std::set<std::uint64_t> update_seqs;  // distinct guild events of kind 201 = updates sent
  std::uint64_t deliveries = 0, snapshot_entries = 0, subscribed = 0, page_requests = 0, closed = 0;
  std::unordered_map<std::uint64_t, std::size_t> index_of;  // session id -> index
  std::vector<std::vector<bool>> known(sessions, std::vector<bool>(sessions + 1, false));
  std::vector<unsigned> known_count(sessions, 0);
  unsigned complete = 0;
  auto learn = [&](std::size_t i, std::uint64_t user) {
    if (user == 0 || user > sessions || known[i][user]) return;
    known[i][user] = true;
    if (++known_count[i] == sessions) ++complete;
  };
  const auto start = Clock::now();
  std::optional<client::InitialPresence> presence;
  if (const char* p = std::getenv("HEARTH_BENCH_IDENTIFY_PRESENCE"); p && std::string(p) == "1") {
    presence = client::InitialPresence{1, ""};
  }
  for (unsigned s = 0; s < sessions; ++s) {
    clients[s % connections]->identify(s, s + 1, "t", {1}, presence);
  }
  auto last_progress = Clock::now();
  auto last_heartbeat = Clock::now();
  while (true) {
    std::size_t got = 0;
    for (auto& c : clients) {
      msgs.clear();
      got += c->poll(msgs, std::chrono::milliseconds(0));
      for (auto& m : msgs) {
        if (auto* r = std::get_if<client::Ready>(&m)) {
          index_of[r->session_id] = r->request_id;
          // A session is never told of itself (its own status comes as 207).
          learn(r->request_id, r->request_id + 1);
        } else if (auto* e = std::get_if<client::Event>(&m); e && e->kind == 201) {
          ++deliveries;
          update_seqs.insert(e->guild_seq);
          auto h = msgpack::unpack(e->payload.data(), e->payload.size());
          learn(index_of.at(e->session_id), h.get().via.array.ptr[0].via.u64);
        } else if (auto* p = std::get_if<client::PluginMessage>(&m); p && p->kind == 202) {
          // [guild, online, after, more, [[user, status, activity]...], version]
          auto h = msgpack::unpack(p->payload.data(), p->payload.size());
          const auto* f = h.get().via.array.ptr;
          const auto& entries = f[4].via.array;
          snapshot_entries += entries.size;
          for (std::uint32_t k = 0; k < entries.size; ++k) {
            learn(index_of.at(p->session_id), entries.ptr[k].via.array.ptr[0].via.u64);
          }
          if (all_pages && f[3].via.boolean && entries.size > 0) {  // fetch the next page
            ++page_requests;
            // By cursor: the page after the last user id listed (docs/presence.md).
            const std::uint64_t after = entries.ptr[entries.size - 1].via.array.ptr[0].via.u64;
            msgpack::sbuffer b;
            msgpack::pack(b, std::make_tuple(std::uint64_t{1}, after));
            c->plugin_message(p->session_id, 204, std::string_view(b.data(), b.size()));
          }
        } else if (std::holds_alternative<client::Subscribed>(m)) {
          ++subscribed;
        } else if (std::holds_alternative<client::SessionClosed>(m)) {
          ++closed;  // e.g. SLOW_CONSUMER: that user goes offline after the grace period
        }
      }
    }
    const auto now = Clock::now();
    if (got) last_progress = now;
    if (now - last_heartbeat > std::chrono::seconds(5)) {
      for (auto& c : clients) c->heartbeat();
      last_heartbeat = now;
    }
    // Finished: every view complete, or (first pages only) nothing new for 1 s.
    if (now - last_progress > std::chrono::seconds(1) && (!all_pages || complete == sessions)) {
      break;
    }
    if (now - last_progress > std::chrono::seconds(10)) {
      std::fprintf(stderr, "stalled: %u of %u sessions complete\n", complete, sessions);
      break;
    }
  }
  const auto finished = last_progress;
  const double secs = std::chrono::duration<double>(finished - start).count();
  std::printf("%u sessions (%u users) of one guild on %u connections come online\n", sessions,
              sessions, connections);
  std::printf(
      "  last update delivered after  %.2f s (subscribed %llu; sessions knowing everyone: %u)\n",
      secs, static_cast<unsigned long long>(subscribed), complete);
  std::printf("  PRESENCE_UPDATEs sent        %zu (minimum %u: one per user)\n", update_seqs.size(),
              sessions);
  std::printf("  sessions closed by the node  %llu\n", static_cast<unsigned long long>(closed));
  std::printf("  update deliveries            %llu, %.0f per second\n",
              static_cast<unsigned long long>(deliveries), deliveries / secs);
  std::printf("  snapshot entries             %llu (%llu page requests)\n",
              static_cast<unsigned long long>(snapshot_entries),
              static_cast<unsigned long long>(page_requests));
  return 0;
}
