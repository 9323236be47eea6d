// Push pipeline figures against the local provider (tests/push_sink.py over
// HTTP/2 + TLS): a `hearth all-in-one` node with the push plugin, one
// offline user with `--devices` devices, and envelopes naming that user.
//
// 1. Sustained: the collector is kept busy but never full (no shedding);
//    pushes/s as the provider counts them, and the node's latency.
// 2. Burst: a steady load at half that rate, then 20x the buffer at once;
//    a timeline of the provider's rate, the buffer and the shed count, and
//    the time until the buffer is empty again.
//
//   hearth_push_bench [--devices 100] [--buffer 10000] [--pushers 2]
//                     [--in-flight 100] [--seconds 10] [--http 2|1.1]
//                     [--sink nghttpd|python]
//
// The provider is nghttpd (nghttp2's C server, answering every POST with a
// static FCM-style reply: it measures Hearth, not the provider), or
// tests/push_sink.py (Python: its own speed is then the limit). Deliveries
// are counted by the node (`sent`: 2xx answers).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <msgpack.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>

#include "cluster.hpp"
#include "hearth/client.hpp"
#include "push_harness.hpp"

namespace {

using namespace hearth::test;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Args {
  int devices = 100, buffer = 10000, pushers = 2, in_flight = 100, seconds = 10;
  std::string http = "2";
  std::string sink = "nghttpd";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--devices") {
      a.devices = std::stoi(v);
    } else if (k == "--buffer") {
      a.buffer = std::stoi(v);
    } else if (k == "--pushers") {
      a.pushers = std::stoi(v);
    } else if (k == "--in-flight") {
      a.in_flight = std::stoi(v);
    } else if (k == "--seconds") {
      a.seconds = std::stoi(v);
    } else if (k == "--http") {
      a.http = v;
    } else if (k == "--sink") {
      a.sink = v;
    } else {
      throw std::invalid_argument("unknown option " + k);
    }
  }
  return a;
}

std::string envelope(const std::string& payload) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(std::uint64_t{1}, payload, std::vector<std::uint64_t>{9},
                                   std::string("bench"), std::string("a push")));
  return std::string(b.data(), b.size());
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Registers `n` devices for user 9 in guild 1, then leaves: user 9 is offline.
void register_devices(const std::string& endpoint, int n) {
  hearth::client::SessionClient c(endpoint);
  c.identify(1, 9, "t", {1});
  std::uint64_t session = 0;
  int answers = 0;
  std::vector<hearth::client::Message> msgs;
  const auto end = Clock::now() + 30s;
  bool sent = false;
  while (answers < n && Clock::now() < end) {
    msgs.clear();
    c.poll(msgs, 10ms);
    for (auto& m : msgs) {
      if (auto* r = std::get_if<hearth::client::Ready>(&m)) session = r->session_id;
      if (auto* p = std::get_if<hearth::client::PluginMessage>(&m); p && p->kind == 302) ++answers;
    }
    if (session != 0 && !sent) {
      for (int i = 0; i < n; ++i) {
        msgpack::sbuffer b;
        msgpack::pack(b, std::make_tuple("device-" + std::to_string(i)));
        c.plugin_message(session, 300, std::string_view(b.data(), b.size()));
      }
      sent = true;
    }
  }
  if (answers < n) throw std::runtime_error("device registration timed out");
  c.leave(session);
  std::this_thread::sleep_for(500ms);
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  const int base = port_base();
  const auto dir =
      std::filesystem::temp_directory_path() / ("hearth-push-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  make_certificate(cert, key);
  // The provider: nghttpd serving FCM's path from a directory, or the sink.
  std::unique_ptr<Sink> sink;
  std::unique_ptr<Process> nghttpd;
  std::string url;
  if (a.sink == "python") {
    sink = std::make_unique<Sink>(base + 10, cert, key);
    url = sink->url(a.http == "2");
  } else {
    if (a.http != "2") throw std::invalid_argument("--sink nghttpd speaks HTTP/2 only");
    const auto root = dir / "root" / "v1" / "projects" / "hearth-test";
    std::filesystem::create_directories(root);
    std::ofstream(root / "messages:send") << R"({"name":"projects/hearth-test/messages/1"})";
    nghttpd =
        std::make_unique<Process>("push-bench-nghttpd",
                                  std::vector<std::string>{"-d", (dir / "root").string(),
                                                           std::to_string(base + 11), key, cert},
                                  "/usr/sbin/nghttpd");
    std::this_thread::sleep_for(300ms);
    url =
        "https://127.0.0.1:" + std::to_string(base + 11) + "/v1/projects/hearth-test/messages:send";
  }
  std::vector<std::string> args = {"all-in-one",
                                   "--frontend",
                                   tcp(base),
                                   "--backend",
                                   tcp(base + 1),
                                   "--listen",
                                   tcp(base + 2),
                                   "--stats-interval-ms",
                                   "100",
                                   "--plugin",
                                   std::string("push=") + HEARTH_PUSH_PLUGIN};
  for (const std::string& o : std::vector<std::string>{
           "url=" + url, "ca_file=" + cert, "auth_token=bench",
           "db=" + (dir / "devices.db").string(), "http=" + a.http,
           "pushers=" + std::to_string(a.pushers), "max_in_flight=" + std::to_string(a.in_flight),
           "buffer=" + std::to_string(a.buffer), "max_devices=" + std::to_string(a.devices)}) {
    args.push_back("--plugin-option");
    args.push_back("push." + o);
  }
  Process node("push-bench-node", args);
  if (!node.wait_for_log("with 1 guild node(s)", 10s)) throw std::runtime_error(node.log());
  register_devices(tcp(base + 2), a.devices);
  hearth::client::Publisher pub(tcp(base));
  std::printf(
      "push bench: %d device(s) per publish, buffer %d, %d pusher(s) x %d in flight, "
      "HTTP/%s%s, provider %s\n",
      a.devices, a.buffer, a.pushers, a.in_flight, a.http.c_str(), a.http == "2" ? " over TLS" : "",
      a.sink.c_str());

  // ---- 1. sustained ----
  auto delivered = [&] { return static_cast<std::int64_t>(push_stats(node.log())["sent"]); };
  std::int64_t offered = 0;
  auto feed_to = [&](std::int64_t backlog_limit) {
    const std::int64_t done = delivered();
    while (offered - done + a.devices <= backlog_limit) {
      pub.publish(1, 310, envelope("sustained"));
      offered += a.devices;
    }
    return done;
  };
  const auto start = Clock::now();
  std::int64_t warm_count = 0;
  Clock::time_point warm_at{};
  while (seconds_since(start) < a.seconds + 1) {
    const std::int64_t done = feed_to(a.buffer * 8 / 10);
    if (warm_at == Clock::time_point{} && seconds_since(start) >= 1) {
      warm_at = Clock::now();
      warm_count = done;
    }
    std::this_thread::sleep_for(10ms);
  }
  const double sustained = static_cast<double>(delivered() - warm_count) / seconds_since(warm_at);
  auto st = push_stats(node.log());
  std::printf(
      "sustained: %.0f pushes/s delivered; shed %llu; latency of the last 100 ms: "
      "p50 %.1f ms, p99 %.1f ms (queueing included: the buffer is kept 80%% full)\n",
      sustained, static_cast<unsigned long long>(st["shed_buffer_full"]),
      static_cast<double>(st["latency_p50_us"]) / 1000,
      static_cast<double>(st["latency_p99_us"]) / 1000);
  // Drain before the burst phase.
  while (push_stats(node.log())["buffered"] > 0 || push_stats(node.log())["in_flight"] > 0) {
    std::this_thread::sleep_for(50ms);
  }

  // ---- 2. a burst, then an incident ----
  // Half the sustained rate throughout, except: at 3 s, 20x the buffer at
  // once; 2 s after the buffer is back from that, 5 s at 1.5x the sustained
  // rate, the shape of Discord's incident (arrivals above what the provider
  // takes, for a while).
  const double capacity = sustained;
  const std::int64_t shed_before = push_stats(node.log())["shed_buffer_full"];
  const auto t0 = Clock::now();
  double publish_credit = 0, last_t = 0;  // pushes owed to the offered rate
  bool burst_sent = false;
  struct Episode {
    double start, end;  // when extra load began and ended
    double first_shed = -1, last_shed = -1, recovered = -1;
    std::int64_t shed = 0, peak = 0;
  };
  // The incident starts 2 s after the buffer is back from the burst.
  Episode burst{3, 3}, incident{1e9, 1e9};
  auto offered_rate = [&](double t) {
    return t >= incident.start && t < incident.end ? 1.5 * capacity : capacity / 2;
  };
  std::int64_t last_shed_total = 0, printed_count = delivered();
  double next_sample = 0, next_print = 0;
  std::printf("\n  time  offered/s  delivered/s  buffered  shed (total)\n");
  while (true) {
    const double t = seconds_since(t0);
    publish_credit += offered_rate(t) * (t - last_t);
    last_t = t;
    for (; publish_credit >= a.devices; publish_credit -= a.devices) {
      pub.publish(1, 310, envelope("load"));
    }
    if (!burst_sent && t >= burst.start) {
      for (int i = 0; i < 20 * a.buffer / a.devices; ++i) pub.publish(1, 310, envelope("burst"));
      burst_sent = true;
    }
    if (t >= next_sample) {
      next_sample += 0.1;
      auto st2 = push_stats(node.log());
      const auto buffered = static_cast<std::int64_t>(st2["buffered"]);
      const std::int64_t shed = static_cast<std::int64_t>(st2["shed_buffer_full"]) - shed_before;
      Episode& e = burst.recovered < 0 ? burst : incident;
      e.peak = std::max(e.peak, buffered);
      if (shed > last_shed_total) {
        if (e.first_shed < 0) e.first_shed = t;
        e.last_shed = t;
        e.shed += shed - last_shed_total;
      }
      last_shed_total = shed;
      if (t > e.end + 0.2 && e.recovered < 0 && buffered <= 2 * a.devices) {
        e.recovered = t;
        if (&e == &burst) incident = {t + 2, t + 7};
      }
      if (t >= next_print) {
        next_print += 0.5;
        const auto count = static_cast<std::int64_t>(st2["sent"]);
        std::printf("  %4.1f s %9.0f %11.0f %9lld %12lld\n", t, offered_rate(t),
                    (count - printed_count) / 0.5, static_cast<long long>(buffered),
                    static_cast<long long>(shed));
        printed_count = count;
      }
      if (incident.recovered > 0 && t > incident.recovered + 2) break;
      if (t > 120) throw std::runtime_error("no recovery within 120 s");
    }
    std::this_thread::sleep_for(2ms);
  }
  std::printf(
      "\nburst: %d pushes (20x the buffer) at %.0f s over a steady %.0f/s: peak buffer %lld, "
      "%lld shed (from +%.1f to +%.1f s), buffer back to steady at +%.1f s\n",
      20 * a.buffer, burst.start, capacity / 2, static_cast<long long>(burst.peak),
      static_cast<long long>(burst.shed), burst.first_shed - burst.start,
      burst.last_shed - burst.start, burst.recovered - burst.start);
  std::printf(
      "incident: %.0f/s offered (1.5x) for %.0f s: peak buffer %lld, %lld shed (from +%.1f to "
      "+%.1f s after it began), buffer back to steady %.1f s after it ended\n",
      1.5 * capacity, incident.end - incident.start, static_cast<long long>(incident.peak),
      static_cast<long long>(incident.shed), incident.first_shed - incident.start,
      incident.last_shed - incident.start, incident.recovered - incident.end);
  std::filesystem::remove_all(dir);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "push bench: %s\n", e.what());
  return 1;
}
