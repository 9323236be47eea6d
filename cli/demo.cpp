// The demo workload: sessions multiplexed over a few connections, a paced
// publisher, and a live line per second with throughput, latency and a check
// that every session's sequence has no gaps.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cli/demo_mentions.hpp"
#include "cli/run_modes.hpp"
#include "hearth/client.hpp"

namespace hearth::cli {
namespace {

using Clock = std::chrono::steady_clock;
namespace hc = hearth::client;

// The demo's own events; other kinds (presence updates, mentions) are
// counted apart.
constexpr std::uint64_t kDemoKind = 1;
constexpr std::uint64_t kMentionKind = 2;
constexpr std::uint64_t kPushEventKind = 310;  // the push plugin's envelope
constexpr std::uint64_t kFirstOfflineUser = 1000000;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

struct Window {
  std::mutex mu;
  std::vector<std::uint64_t> latencies_us;
  std::uint64_t deliveries = 0;
  std::uint64_t gaps = 0;
  std::uint64_t sessions_ready = 0;
  std::uint64_t subscribed = 0;
  std::uint64_t closed = 0;
  std::uint64_t other_events = 0;
};

void receive_loop(std::vector<std::unique_ptr<hc::SessionClient>>& clients, Window& w,
                  const std::atomic<bool>& stop) {
  std::unordered_map<std::uint64_t, std::uint64_t> last_seq;
  std::vector<hc::Message> msgs;
  std::vector<std::uint64_t> lat;
  std::uint64_t deliveries = 0, gaps = 0, ready = 0, subscribed = 0, closed = 0, other_events = 0;
  auto next_heartbeat = Clock::now() + std::chrono::seconds(5);
  auto next_report = Clock::now();
  while (!stop) {
    bool any = false;
    for (auto& c : clients) {
      msgs.clear();
      if (c->poll(msgs, std::chrono::milliseconds(0)) == 0) continue;
      any = true;
      const std::uint64_t t = now_ns();
      for (auto& m : msgs) {
        // Every stream item (SUBSCRIBED, UNSUBSCRIBED and GUILD_UNAVAILABLE
        // as well as events) takes the session's next seq.
        if (auto pos = hc::stream_position(m)) {
          std::uint64_t& last = last_seq[pos->session_id];
          if (pos->seq != last + 1) ++gaps;
          last = pos->seq;
        }
        if (auto* e = std::get_if<hc::Event>(&m)) {
          ++deliveries;
          if (e->kind == kDemoKind) {
            std::uint64_t sent = 0;
            if (e->payload.size() >= 8) std::memcpy(&sent, e->payload.data(), 8);
            if (sent && t > sent) lat.push_back((t - sent) / 1000);
          } else {
            ++other_events;  // e.g. presence updates, when that plugin is loaded
          }
        } else if (std::holds_alternative<hc::Ready>(m)) {
          ++ready;
        } else if (auto* s = std::get_if<hc::Subscribed>(&m)) {
          if (s->code == 0) ++subscribed;
        } else if (std::holds_alternative<hc::SessionClosed>(m)) {
          ++closed;
        } else if (auto* err = std::get_if<hc::ServerError>(&m)) {
          spdlog::warn("demo: server error {}: {}", hc::code_name(err->code), err->text);
        }
      }
    }
    const auto now = Clock::now();
    if (now >= next_heartbeat) {
      for (auto& c : clients) c->heartbeat();
      next_heartbeat = now + std::chrono::seconds(5);
    }
    if (now >= next_report) {
      std::lock_guard lock(w.mu);
      w.latencies_us.insert(w.latencies_us.end(), lat.begin(), lat.end());
      w.deliveries += deliveries;
      w.gaps += gaps;
      w.sessions_ready += ready;
      w.subscribed += subscribed;
      w.closed += closed;
      w.other_events += other_events;
      lat.clear();
      deliveries = gaps = ready = subscribed = closed = other_events = 0;
      next_report = now + std::chrono::milliseconds(100);
    }
    if (!any) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

std::uint64_t percentile(std::vector<std::uint64_t>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace

void run_demo(const DemoConfig& demo, const std::string& frontend, const std::string& listen,
              std::atomic<bool>& stop, const std::function<std::string()>& node_summary) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the node join the ring
  spdlog::info(
      "demo: {} connections x {} sessions, {} guilds ({} per session), {} events/s of {} bytes",
      demo.connections, demo.sessions_per_connection, demo.guilds, demo.guilds_per_session,
      demo.rate, demo.payload_bytes);
  std::mt19937_64 rng(42);
  std::vector<std::unique_ptr<hc::SessionClient>> clients;
  std::uint64_t user = 1;
  for (unsigned c = 0; c < demo.connections; ++c) {
    clients.push_back(std::make_unique<hc::SessionClient>(listen));
    for (unsigned s = 0; s < demo.sessions_per_connection; ++s, ++user) {
      std::vector<std::uint64_t> guilds;
      while (guilds.size() < demo.guilds_per_session) {
        std::uint64_t g = 1 + rng() % demo.guilds;
        if (std::find(guilds.begin(), guilds.end(), g) == guilds.end()) guilds.push_back(g);
      }
      clients.back()->identify(user, user, "demo-token", guilds);
    }
  }
  Window window;
  // Two receivers, one per core, each with half the connections.
  std::vector<std::unique_ptr<hc::SessionClient>> half_a, half_b;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    (i % 2 ? half_b : half_a).push_back(std::move(clients[i]));
  }
  std::thread rx_a([&] { receive_loop(half_a, window, stop); });
  std::thread rx_b([&] { receive_loop(half_b, window, stop); });

  // Push traffic: offline users with a device, mentioned at a steady rate.
  const bool mentions = demo.offline_users > 0 && demo.mention_rate > 0;
  if (mentions) {
    const unsigned registered =
        register_offline_devices(listen, kFirstOfflineUser, demo.offline_users, demo.guilds);
    spdlog::info(
        "demo: {} offline users with a device; {} mentions/s of them, each a push (the push "
        "provider counts them){}",
        registered, demo.mention_rate,
        registered == 0 ? " -- no push plugin answered, so none will be pushed" : "");
  }

  hc::Publisher publisher(frontend);
  std::string payload(demo.payload_bytes, 'x');
  const auto start = Clock::now();
  auto next_line = start + std::chrono::seconds(1);
  std::uint64_t published = 0, published_window = 0, total_deliveries = 0, total_gaps = 0;
  std::uint64_t ready = 0, subscribed = 0;
  const auto interval = std::chrono::nanoseconds(1000000000ULL / demo.rate);
  auto next_publish = start + std::chrono::milliseconds(700);  // subscriptions settle first
  const auto mention_interval =
      std::chrono::nanoseconds(1000000000ULL / std::max(1u, demo.mention_rate));
  auto next_mention = next_publish;
  std::uint64_t mentions_window = 0;
  while (!stop) {
    const auto now = Clock::now();
    if (demo.duration_s && now - start > std::chrono::seconds(demo.duration_s)) break;
    int burst = 0;
    while (next_publish <= now && burst++ < 1000) {
      const std::uint64_t t = now_ns();
      std::memcpy(payload.data(), &t, 8);
      publisher.publish(1 + published % demo.guilds, kDemoKind, payload);
      ++published;
      ++published_window;
      next_publish += interval;
    }
    for (int m = 0; mentions && next_mention <= now && m < 100; ++m) {
      const unsigned i = static_cast<unsigned>(rng() % demo.offline_users);
      publisher.publish(1 + i % demo.guilds, kPushEventKind,
                        mention_envelope(kMentionKind, "mention", kFirstOfflineUser + i));
      ++mentions_window;
      next_mention += mention_interval;
    }
    std::vector<hc::Message> acks;
    publisher.poll(acks, std::chrono::milliseconds(0));
    if (now >= next_line) {
      std::vector<std::uint64_t> lat;
      std::uint64_t deliveries = 0, other = 0;
      {
        std::lock_guard lock(window.mu);
        lat.swap(window.latencies_us);
        deliveries = window.deliveries;
        other = window.other_events;
        window.other_events = 0;
        total_gaps += window.gaps;
        ready += window.sessions_ready;
        subscribed += window.subscribed;
        window.deliveries = window.gaps = window.sessions_ready = window.subscribed = 0;
      }
      total_deliveries += deliveries;
      const auto p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99),
                 max = percentile(lat, 1.0);
      spdlog::info(
          "demo: published {}/s | delivered {}/s | latency p50 {} us p99 {} us max {} us | "
          "sessions {} ready, {} guild subscriptions | other events {} | sequence gaps {}{}",
          published_window, deliveries, p50, p99, max, ready, subscribed, other, total_gaps,
          mentions ? " | mentions " + std::to_string(mentions_window) + "/s" : std::string());
      published_window = 0;
      mentions_window = 0;
      next_line += std::chrono::seconds(1);
      if (next_line < now) next_line = now + std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  spdlog::info("demo: done: published {}, delivered {}, sequence gaps {}; node: {}", published,
               total_deliveries, total_gaps, node_summary());
  stop = true;  // demo-duration-s elapsed, or already stopping
  rx_a.join();
  rx_b.join();
}

}  // namespace hearth::cli
