// End-to-end fan-out to real client connections on loopback, Hearth beside
// Redis pub/sub on the same workload in the same run.
//
//   build/bench/hearth_e2e_bench [--connections 1000] [--events 20000] [--inflight 64]
//       [--payload 100] [--multiplex 1] [--latency-events 200] [--only hearth|redis]
//       [--curve 1] [--port-base 18400]
//
// --curve 1 runs Hearth twice per trial, with NULL and with CURVE on the
// client endpoint and the publisher's (keys made per run), and prints the
// ratios: the cost of encryption on the fan-out path. Server CPU is the
// all-in-one process's user + system time over the run, per delivery.
//
// Throughput: one publisher keeps `inflight` events outstanding (an event is
// done when every session has it); deliveries/s = sessions x events / time.
// Latency: one event at a time, publish to the last connection receiving it.
// Receivers run on two threads, each with half the connections in an epoll set. Servers and
// clients share this machine's cores, for both systems alike.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/curve_keys.hpp"
#include "common/frames.hpp"
#include "common/wire.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  unsigned connections = 1000;
  unsigned events = 20000;
  unsigned inflight = 64;
  unsigned payload = 100;
  unsigned multiplex = 1;  // sessions per connection (Hearth only)
  unsigned latency_events = 200;
  std::string only;
  std::string flush_interval_us = "0";
  std::string server_log = "/dev/null";
  unsigned trials = 3;
  bool curve = false;  // also run Hearth with CURVE, and compare
  int port_base = 18400;
};

pid_t spawn(const std::vector<std::string>& args, const std::string& log = "/dev/null") {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

void stop_process(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
}

// An epoll set watching connections [from, to) for input; each event's
// data.u32 is the connection's index. fd_of(i) gives connection i's fd.
template <class FdOf>
int epoll_over(unsigned from, unsigned to, FdOf fd_of) {
  const int ep = epoll_create1(0);
  for (unsigned i = from; i < to; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd_of(i), &ev);
  }
  return ep;
}

// Per-event completion: counts how many sessions have each event.
struct Tracker {
  Tracker(unsigned events, unsigned sessions)
      : counts(events), done_at(events), per_event(sessions) {}
  void deliver(std::uint64_t event) {
    if (event >= counts.size()) return;
    if (counts[event].fetch_add(1, std::memory_order_relaxed) + 1 == per_event) {
      done_at[event] = Clock::now();
      completed.fetch_add(1, std::memory_order_release);
    }
  }
  std::vector<std::atomic<unsigned>> counts;
  std::vector<Clock::time_point> done_at;
  std::atomic<unsigned> completed{0};
  unsigned per_event;
};

struct Result {
  double deliveries_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  double cpu_us_per_delivery = 0;  // the server process, user + system
};

// User + system CPU seconds of a process so far (/proc/PID/stat).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt (fields 3-13)
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Drives `publish(i)` keeping `inflight` outstanding, then a latency run.
Result drive(const Options& o, unsigned per_event,
             const std::function<void(std::uint64_t)>& publish,
             const std::function<void(Tracker*)>& set_tracker) {
  Result r;
  {
    Tracker t(o.events, per_event);
    set_tracker(&t);
    const auto start = Clock::now();
    for (unsigned i = 0; i < o.events; ++i) {
      // Sleep-wait: a spinning publisher would take a core from the system under test.
      while (i >= t.completed.load(std::memory_order_acquire) + o.inflight) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
      publish(i);
    }
    while (t.completed.load() < o.events) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (Clock::now() - start > std::chrono::seconds(120)) {
        std::fprintf(stderr, "timed out with %u of %u events complete\n", t.completed.load(),
                     o.events);
        break;
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    r.deliveries_per_s = static_cast<double>(t.completed.load()) * per_event / secs;
    set_tracker(nullptr);
  }
  {
    Tracker t(o.latency_events, per_event);
    set_tracker(&t);
    std::vector<double> lat;
    for (unsigned i = 0; i < o.latency_events; ++i) {
      const auto t0 = Clock::now();
      publish(i);
      while (t.completed.load(std::memory_order_acquire) < i + 1) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (Clock::now() - t0 > std::chrono::seconds(10)) break;
      }
      lat.push_back(std::chrono::duration<double, std::milli>(t.done_at[i] - t0).count());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    set_tracker(nullptr);
    std::sort(lat.begin(), lat.end());
    r.p50_ms = lat[lat.size() / 2];
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  }
  return r;
}

// ------------------------------------------------------------------ Hearth

Result run_hearth(const Options& o, bool curve) {
  const std::string bin = HEARTH_BIN;
  const std::string frontend = "tcp://127.0.0.1:" + std::to_string(o.port_base);
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(o.port_base + 100);
  std::vector<std::string> args = {bin,
                                   "all-in-one",
                                   "--frontend",
                                   frontend,
                                   "--backend",
                                   "tcp://127.0.0.1:" + std::to_string(o.port_base + 1),
                                   "--listen",
                                   listen,
                                   "--log-level",
                                   "info",
                                   "--subscribe-permits",
                                   "1024",
                                   "--flush-interval-us",
                                   o.flush_interval_us,
                                   "--stats-interval-ms",
                                   "1000"};
  // CURVE: one server pair (the broker's and the embedded node's), one
  // publisher pair listed for every guild, a fresh pair per client.
  hearth::CurveKeyPair server_key, publisher_key;
  const std::string key_dir = "/tmp/hearth-e2e-bench-keys-" + std::to_string(getpid());
  if (curve) {
    server_key = hearth::generate_curve_key_pair();
    publisher_key = hearth::generate_curve_key_pair();
    mkdir(key_dir.c_str(), 0700);
    std::ofstream(key_dir + "/server.key") << server_key.secret_key << "\n";
    std::ofstream(key_dir + "/publishers") << "bench " << publisher_key.public_key << " all\n";
    for (const char* a : {"--key", "--publisher-keys"}) args.push_back(a);
    args.insert(args.end() - 1, key_dir + "/server.key");
    args.push_back(key_dir + "/publishers");
  }
  const pid_t server = spawn(args, o.server_log);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  zmq::context_t ctx(2);  // two I/O threads, as the receivers are two
  std::vector<zmq::socket_t> socks;
  for (unsigned c = 0; c < o.connections; ++c) {
    socks.emplace_back(ctx, zmq::socket_type::dealer);
    socks.back().set(zmq::sockopt::linger, 0);
    if (curve) {
      hearth::make_curve_client(socks.back(), hearth::generate_curve_key_pair(),
                                server_key.public_key);
    }
    socks.back().connect(listen);
    for (unsigned s = 0; s < o.multiplex; ++s) {
      hearth::wire::HeaderWriter w(hearth::protocol::Type::kIdentify, 4);
      w.u64(s).u64(c * o.multiplex + s).str("t").u64_array(std::vector<std::uint64_t>{1});
      socks.back().send(zmq::buffer(w.view()));
    }
  }
  const unsigned sessions = o.connections * o.multiplex;
  std::atomic<Tracker*> tracker{nullptr};
  std::atomic<unsigned> subscribed{0};
  std::atomic<bool> stop{false};
  // epoll over each socket's ZMQ_FD: a wake-up costs O(ready sockets), not
  // O(all sockets) as zmq_poll does. ZMQ_FD is edge-like: drain until EAGAIN.
  auto receiver = [&](unsigned from, unsigned to) {
    const int ep = epoll_over(from, to, [&](unsigned i) { return socks[i].get(zmq::sockopt::fd); });
    std::vector<epoll_event> ready(512);
    hearth::Frames frames;
    auto drain = [&](unsigned i) {
      while (hearth::recv_frames(socks[i], frames)) {
        hearth::wire::HeaderReader r(frames[0].data(), frames[0].size());
        if (r.type() == static_cast<std::uint32_t>(hearth::protocol::Type::kSubscribed)) {
          ++subscribed;
        } else if (r.type() == static_cast<std::uint32_t>(hearth::protocol::Type::kEvents)) {
          Tracker* t = tracker.load(std::memory_order_acquire);
          std::size_t n = 0;
          const msgpack::object* entries = r.array("events", 100000, &n);
          for (std::size_t e = 0; t && entries && e < n; ++e) {
            const msgpack::object* f = entries[e].via.array.ptr;
            // [session_id, seq, guild_id, kind, epoch, guild_seq, frame, offset, length]
            const std::uint64_t frame = f[6].via.u64, offset = f[7].via.u64;
            std::uint64_t event;
            std::memcpy(&event, static_cast<const char*>(frames[frame].data()) + offset,
                        sizeof(event));
            t->deliver(event);
          }
        }
      }
    };
    for (unsigned i = from; i < to; ++i) drain(i);
    while (!stop) {
      const int n = epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 50);
      for (int k = 0; k < n; ++k) {
        const unsigned i = ready[k].data.u32;
        // Reading ZMQ_EVENTS lets libzmq process its commands and re-arm the fd.
        while (socks[i].get(zmq::sockopt::events) & ZMQ_POLLIN) drain(i);
      }
    }
    close(ep);
  };
  std::thread rx1(receiver, 0, o.connections / 2), rx2(receiver, o.connections / 2, o.connections);
  while (subscribed < sessions) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  zmq::socket_t pub(ctx, zmq::socket_type::dealer);
  pub.set(zmq::sockopt::linger, 0);
  if (curve) hearth::make_curve_client(pub, publisher_key, server_key.public_key);
  pub.connect(frontend);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string payload(o.payload, 'h');
  hearth::wire::HeaderWriter header(hearth::protocol::Type::kPublish, 3);
  header.u64(1).u64(1).u64(0);
  const double cpu_before = cpu_seconds(server);
  Result r = drive(
      o, sessions,
      [&](std::uint64_t i) {
        std::memcpy(payload.data(), &i, sizeof(i));
        pub.send(zmq::buffer(header.view()), zmq::send_flags::sndmore);
        pub.send(zmq::buffer(payload));
      },
      [&](Tracker* t) { tracker.store(t, std::memory_order_release); });
  const double deliveries = static_cast<double>(o.events + o.latency_events) * sessions;
  r.cpu_us_per_delivery = (cpu_seconds(server) - cpu_before) * 1e6 / deliveries;
  stop = true;
  rx1.join();
  rx2.join();
  socks.clear();
  pub.close();
  stop_process(server);
  if (curve) {
    std::remove((key_dir + "/server.key").c_str());
    std::remove((key_dir + "/publishers").c_str());
    rmdir(key_dir.c_str());
  }
  return r;
}

// ------------------------------------------------------------------- Redis

int tcp_connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 100; ++i) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::perror("connect to redis");
  std::exit(1);
}

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) std::exit(1);
    off += static_cast<std::size_t>(n);
  }
}

Result run_redis(const Options& o) {
  const int port = o.port_base + 200;
  const pid_t server = spawn({"redis-server", "--port", std::to_string(port), "--save", "",
                              "--appendonly", "no", "--maxclients", "10000"});
  const std::string channel = "guild1";
  const std::string subscribed_reply = "*3\r\n$9\r\nsubscribe\r\n$6\r\nguild1\r\n:1\r\n";
  const std::string msg_prefix =
      "*3\r\n$7\r\nmessage\r\n$6\r\nguild1\r\n$" + std::to_string(o.payload) + "\r\n";
  const std::size_t record = msg_prefix.size() + o.payload + 2;
  std::vector<int> fds;
  for (unsigned c = 0; c < o.connections; ++c) {
    fds.push_back(tcp_connect(port));
    write_all(fds.back(), "SUBSCRIBE guild1\r\n");
  }
  // Wait for every subscription confirmation (blocking reads, one socket at a time).
  for (int fd : fds) {
    std::string got;
    char buf[256];
    while (got.size() < subscribed_reply.size()) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) std::exit(1);
      got.append(buf, static_cast<std::size_t>(n));
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  std::atomic<Tracker*> tracker{nullptr};
  std::atomic<bool> stop{false};
  auto receiver = [&](unsigned from, unsigned to) {
    const int ep = epoll_over(from, to, [&](unsigned i) { return fds[i]; });
    std::vector<epoll_event> ready(512);
    std::vector<std::string> pending(fds.size());
    std::vector<char> buf(1 << 16);
    while (!stop) {
      const int got = epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 50);
      for (int k = 0; k < got; ++k) {
        const unsigned i = ready[k].data.u32;
        std::string& acc = pending[i];
        ssize_t n;
        while ((n = read(fds[i], buf.data(), buf.size())) > 0) {
          acc.append(buf.data(), static_cast<std::size_t>(n));
        }
        std::size_t off = 0;
        Tracker* t = tracker.load(std::memory_order_acquire);
        for (; acc.size() - off >= record; off += record) {
          std::uint64_t event;
          std::memcpy(&event, acc.data() + off + msg_prefix.size(), sizeof(event));
          if (t) t->deliver(event);
        }
        acc.erase(0, off);
      }
    }
    close(ep);
  };
  std::thread rx1(receiver, 0, o.connections / 2), rx2(receiver, o.connections / 2, o.connections);
  const int pub = tcp_connect(port);
  fcntl(pub, F_SETFL, O_NONBLOCK);
  std::string payload(o.payload, 'r');
  const std::string cmd_prefix =
      "*3\r\n$7\r\nPUBLISH\r\n$6\r\nguild1\r\n$" + std::to_string(o.payload) + "\r\n";
  char sink[4096];
  Result r = drive(
      o, o.connections,
      [&](std::uint64_t i) {
        std::memcpy(payload.data(), &i, sizeof(i));
        const std::string cmd = cmd_prefix + payload + "\r\n";
        std::size_t off = 0;
        while (off < cmd.size()) {
          const ssize_t n = write(pub, cmd.data() + off, cmd.size() - off);
          if (n > 0) off += static_cast<std::size_t>(n);
          while (read(pub, sink, sizeof(sink)) > 0) {
          }
        }
        while (read(pub, sink, sizeof(sink)) > 0) {
        }
      },
      [&](Tracker* t) { tracker.store(t, std::memory_order_release); });
  stop = true;
  rx1.join();
  rx2.join();
  for (int fd : fds) close(fd);
  close(pub);
  stop_process(server);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--connections")
      o.connections = std::stoul(v);
    else if (k == "--events")
      o.events = std::stoul(v);
    else if (k == "--inflight")
      o.inflight = std::stoul(v);
    else if (k == "--payload")
      o.payload = std::max(8ul, std::stoul(v));
    else if (k == "--multiplex")
      o.multiplex = std::stoul(v);
    else if (k == "--latency-events")
      o.latency_events = std::stoul(v);
    else if (k == "--only")
      o.only = v;
    else if (k == "--flush-interval-us")
      o.flush_interval_us = v;
    else if (k == "--server-log")
      o.server_log = v;
    else if (k == "--trials")
      o.trials = std::max(1ul, std::stoul(v));
    else if (k == "--curve")
      o.curve = v != "0";
    else if (k == "--port-base")
      o.port_base = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("%u connections x %u sessions, %u events of %u bytes, %u in flight\n", o.connections,
              o.multiplex, o.events, o.payload, o.inflight);
  std::printf("%-8s %16s %14s %14s\n", "system", "deliveries/s", "latency p50", "p99");
  // Systems alternate trial by trial so a noisy spell hurts both alike; the
  // median trial of each is reported.
  std::vector<Result> redis, hearth, hearth_curve;
  for (unsigned t = 0; t < o.trials; ++t) {
    if ((o.only.empty() || o.only == "redis") && o.multiplex == 1) redis.push_back(run_redis(o));
    if (o.only.empty() || o.only == "hearth") hearth.push_back(run_hearth(o, false));
    if (o.curve && !hearth.empty()) {
      hearth_curve.push_back(run_hearth(o, true));
      // Each pair as it completes: a long run cut short still says something.
      std::printf("  trial %u: NULL %.0f/s %.3f us/delivery, CURVE %.0f/s %.3f us/delivery\n",
                  t + 1, hearth.back().deliveries_per_s, hearth.back().cpu_us_per_delivery,
                  hearth_curve.back().deliveries_per_s, hearth_curve.back().cpu_us_per_delivery);
      std::fflush(stdout);
    }
  }
  auto median = [](std::vector<Result>& rs, auto field) {
    std::vector<double> v;
    for (auto& r : rs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto print = [&](const char* name, std::vector<Result>& rs) {
    if (rs.empty()) return;
    std::printf("%-8s %16.0f %11.2f ms %11.2f ms   (median of %zu)", name,
                median(rs, &Result::deliveries_per_s), median(rs, &Result::p50_ms),
                median(rs, &Result::p99_ms), rs.size());
    if (name[0] == 'h') {
      std::printf("  server CPU %.3f us/delivery", median(rs, &Result::cpu_us_per_delivery));
    }
    std::printf("\n");
  };
  print("redis", redis);
  print("hearth", hearth);
  print("h-curve", hearth_curve);
  if (!hearth.empty() && !hearth_curve.empty()) {
    std::printf(
        "CURVE / NULL: deliveries/s %.3fx, server CPU per delivery %.3fx\n",
        median(hearth_curve, &Result::deliveries_per_s) / median(hearth, &Result::deliveries_per_s),
        median(hearth_curve, &Result::cpu_us_per_delivery) /
            median(hearth, &Result::cpu_us_per_delivery));
  }
  return 0;
}
