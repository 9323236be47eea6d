// RESUME figures (docs/performance.md, "Resume"), against `hearth all-in-one`
// started by this program on loopback:
//
//   build/bench/hearth_resume_bench latency [missed=1000] [trials=20]
//     A session misses `missed` events while its connection is gone, then
//     RESUMEs on a new connection: time from RESUME to the first replayed
//     event, to the last one, and to a live event published at RESUME time.
//   build/bench/hearth_resume_bench memory [sessions=100000]
//     The node's RSS growth per idle resumable session (no guilds, so an
//     empty replay buffer), attached and then detached.
//   build/bench/hearth_resume_bench storm [clients=10000] [processes=4]
//     `clients` connections, one session each in one guild, lose their
//     connections at once; 10 events are published meanwhile; all reconnect
//     and RESUME at once. Time until every one has RESUMED and its 10 events.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/frames.hpp"
#include "common/wire.hpp"

extern char** environ;

using namespace hearth;
using Clock = std::chrono::steady_clock;
using protocol::Type;

namespace {

constexpr int kBase = 18700;
const std::string kPublishers = "tcp://127.0.0.1:" + std::to_string(kBase);
const std::string kSessions = "tcp://127.0.0.1:" + std::to_string(kBase + 2);

pid_t start_server(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {HEARTH_BIN,    "all-in-one",
                                   "--frontend",  kPublishers,
                                   "--backend",   "tcp://127.0.0.1:" + std::to_string(kBase + 1),
                                   "--listen",    kSessions,
                                   "--log-level", "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/tmp/hearth_resume_bench.log",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  return pid;
}

void stop_server(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

zmq::socket_t dealer(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.connect(endpoint);
  return s;
}

void send_header(zmq::socket_t& s, const wire::HeaderWriter& w) {
  Frames f;
  f.push_back(frame_of(w.view()));
  send_frames(s, f, false);
}

void identify(zmq::socket_t& s, std::uint64_t request, std::uint64_t user,
              const std::vector<std::uint64_t>& guilds) {
  wire::HeaderWriter w(Type::kIdentify, 4);
  w.u64(request).u64(user).str("token").u64_array(guilds);
  send_header(s, w);
}

void resume(zmq::socket_t& s, std::uint64_t request, std::uint64_t sid, std::string_view token,
            std::uint64_t last_seq) {
  wire::HeaderWriter w(Type::kResume, 4);
  w.u64(request).u64(sid).bin(token).u64(last_seq);
  send_header(s, w);
}

void publish(zmq::socket_t& pub, std::uint64_t guild, std::uint64_t ack) {
  wire::HeaderWriter w(Type::kPublish, 3);
  w.u64(guild).u64(1).u64(ack);
  Frames f;
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(std::string(100, 'x')));
  send_frames(pub, f, false);
}

// What one message told us: its type, and for READY / RESUMED the session,
// for EVENTS the number of entries and the highest seq.
struct Seen {
  std::uint32_t type = 0;
  std::uint64_t session = 0;
  std::string token;
  std::uint64_t entries = 0;
  std::uint64_t max_seq = 0;
};

bool receive(zmq::socket_t& s, Seen& out, int timeout_ms) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return false;
  Frames f;
  if (!recv_frames(s, f)) return false;
  wire::HeaderReader r(f[0].data(), f[0].size());
  out = Seen{};
  out.type = r.type();
  if (out.type == static_cast<std::uint32_t>(Type::kReady)) {
    r.u64("request_id");
    out.session = r.u64("session_id");
    r.u64("heartbeat_ms");
    out.token = std::string(r.bin("resume_token"));
  } else if (out.type == static_cast<std::uint32_t>(Type::kResumed)) {
    r.u64("request_id");
    out.session = r.u64("session_id");
  } else if (out.type == static_cast<std::uint32_t>(Type::kSubscribed)) {
    out.session = r.u64("session_id");
    out.max_seq = r.u64("seq");
  } else if (out.type == static_cast<std::uint32_t>(Type::kEvents)) {
    std::size_t n = 0;
    const msgpack::object* items = r.array("events", 100000, &n);
    out.entries = n;
    for (std::size_t i = 0; i < n; ++i) {
      out.max_seq = std::max<std::uint64_t>(out.max_seq, items[i].via.array.ptr[1].via.u64);
    }
  }
  return true;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

int latency(unsigned missed, unsigned trials) {
  const pid_t server = start_server({"--shards", "2"});
  zmq::context_t ctx(1);
  zmq::socket_t pub = dealer(ctx, kPublishers);
  std::vector<double> first, last, live;
  for (unsigned t = 0; t < trials; ++t) {
    const std::uint64_t guild = 1000 + t;
    zmq::socket_t c = dealer(ctx, kSessions);
    identify(c, 1, 42, {guild});
    Seen m;
    std::uint64_t sid = 0, seq = 0;
    std::string token;
    while (receive(c, m, 2000)) {
      if (m.type == static_cast<std::uint32_t>(Type::kReady)) sid = m.session, token = m.token;
      if (m.type == static_cast<std::uint32_t>(Type::kSubscribed)) {
        seq = m.max_seq;
        break;
      }
    }
    c.close();  // the connection is gone: what follows is only in the replay buffer
    for (unsigned i = 0; i < missed; ++i) publish(pub, guild, i + 1);
    for (unsigned acks = 0; acks < missed;) {  // every event sequenced
      Frames f;
      zmq::pollitem_t item{pub.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) <= 0) break;
      while (recv_frames(pub, f)) ++acks;
    }
    zmq::socket_t again = dealer(ctx, kSessions);
    const auto t0 = Clock::now();
    resume(again, 2, sid, token, seq);
    publish(pub, guild, 0);  // live: must come after every replayed event
    const std::uint64_t want_replayed = seq + missed, want_live = want_replayed + 1;
    Clock::time_point t_first{}, t_last{}, t_live{};
    while (receive(again, m, 2000)) {
      if (m.type != static_cast<std::uint32_t>(Type::kEvents)) continue;
      const auto now = Clock::now();
      if (t_first == Clock::time_point{}) t_first = now;
      if (m.max_seq >= want_replayed && t_last == Clock::time_point{}) t_last = now;
      if (m.max_seq >= want_live) {
        t_live = now;
        break;
      }
    }
    if (t_live == Clock::time_point{}) {
      std::fprintf(stderr, "trial %u: the resumed session did not catch up\n", t);
      stop_server(server);
      return 1;
    }
    first.push_back(ms_between(t0, t_first));
    last.push_back(ms_between(t0, t_last));
    live.push_back(ms_between(t0, t_live));
  }
  stop_server(server);
  std::printf("resume after %u missed events, %u trials (ms from RESUME sent):\n", missed, trials);
  std::printf("  first replayed event  p50 %.2f  p99 %.2f\n", percentile(first, 0.5),
              percentile(first, 0.99));
  std::printf("  last replayed event   p50 %.2f  p99 %.2f\n", percentile(last, 0.5),
              percentile(last, 0.99));
  std::printf("  live event            p50 %.2f  p99 %.2f\n", percentile(live, 0.5),
              percentile(live, 0.99));
  return 0;
}

int memory(unsigned sessions) {
  const unsigned per_connection = 10000;
  const unsigned connections = (sessions + per_connection - 1) / per_connection;
  const pid_t server = start_server(
      {"--shards", "2", "--client-heartbeat-ms", "500", "--client-timeout-ms", "1000"});
  zmq::context_t ctx(1);
  const long before = rss_kb(server);
  std::vector<zmq::socket_t> conns;
  unsigned ready = 0;
  for (unsigned c = 0; c < connections; ++c) {
    conns.push_back(dealer(ctx, kSessions));
    const unsigned n = std::min(per_connection, sessions - c * per_connection);
    // In windows: a client that sends everything before reading would be
    // cut off as a slow consumer once its READYs fill the connection queue.
    for (unsigned sent = 0; sent < n;) {
      const unsigned window = std::min(500u, n - sent);
      for (unsigned i = 0; i < window; ++i, ++sent) {
        identify(conns.back(), sent + 1, c * per_connection + sent, {});
      }
      Seen m;
      for (unsigned got = 0; got < window && receive(conns.back(), m, 5000);) {
        if (m.type == static_cast<std::uint32_t>(Type::kReady)) ++got, ++ready;
      }
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long attached = rss_kb(server);
  for (auto& s : conns) s.close();
  // Detaching needs the node to notice: a heartbeat timeout, or a failed
  // send. With no guilds nothing is sent, so wait out the client timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const long detached = rss_kb(server);
  stop_server(server);
  std::printf("%u sessions ready (of %u) over %u connections, no guilds:\n", ready, sessions,
              connections);
  std::printf("  node RSS %ld kB before, %ld kB attached, %ld kB detached\n", before, attached,
              detached);
  std::printf("  per session: %.0f bytes attached, %.0f bytes detached\n",
              1024.0 * static_cast<double>(attached - before) / ready,
              1024.0 * static_cast<double>(detached - before) / ready);
  return ready == sessions ? 0 : 1;
}

// One process's share of the storm; reports its slowest client in ms on `out`.
int storm_child(unsigned first_user, unsigned clients, std::uint64_t guild, int ready_fd, int go_fd,
                int out_fd) {
  zmq::context_t ctx(1);
  // Closed sockets are reaped asynchronously while their replacements open.
  ctx.set(zmq::ctxopt::max_sockets, static_cast<int>(2 * clients + 100));
  std::vector<zmq::socket_t> conns;
  std::vector<std::uint64_t> sids(clients), seqs(clients);
  std::vector<std::string> tokens(clients);
  for (unsigned i = 0; i < clients; ++i) {
    conns.push_back(dealer(ctx, kSessions));
    identify(conns.back(), 1, first_user + i, {guild});
  }
  for (unsigned i = 0; i < clients; ++i) {
    Seen m;
    while (receive(conns[i], m, 10000)) {
      if (m.type == static_cast<std::uint32_t>(Type::kReady))
        sids[i] = m.session, tokens[i] = m.token;
      if (m.type == static_cast<std::uint32_t>(Type::kSubscribed)) {
        seqs[i] = m.max_seq;
        break;
      }
    }
  }
  const auto identified = static_cast<unsigned>(
      std::count_if(sids.begin(), sids.end(), [](std::uint64_t s) { return s != 0; }));
  if (identified != clients) {
    std::fprintf(stderr, "storm: only %u of %u clients got READY\n", identified, clients);
  }
  char b = 1;
  if (write(ready_fd, &b, 1) != 1) return 1;
  if (read(go_fd, &b, 1) != 1) return 1;  // the outage
  for (auto& s : conns) s.close();
  conns.clear();
  if (write(ready_fd, &b, 1) != 1) return 1;
  if (read(go_fd, &b, 1) != 1) return 1;  // events were published: resume, all at once
  const auto t0 = Clock::now();
  for (unsigned i = 0; i < clients; ++i) {
    conns.push_back(dealer(ctx, kSessions));
    resume(conns.back(), 2, sids[i], tokens[i], seqs[i]);
  }
  std::vector<zmq::pollitem_t> items(clients);
  for (unsigned i = 0; i < clients; ++i) items[i] = {conns[i].handle(), 0, ZMQ_POLLIN, 0};
  std::vector<bool> done(clients, false);
  unsigned remaining = clients, invalid = 0;
  double slowest = 0;
  const auto deadline = t0 + std::chrono::seconds(30);
  while (remaining > 0 && Clock::now() < deadline) {
    if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100)) <= 0) continue;
    for (unsigned i = 0; i < clients; ++i) {
      if (done[i] || !(items[i].revents & ZMQ_POLLIN)) continue;
      Seen m;
      while (receive(conns[i], m, 0)) {
        if (m.type == static_cast<std::uint32_t>(Type::kInvalidSession)) ++invalid;
        const bool caught_up =
            m.type == static_cast<std::uint32_t>(Type::kEvents) && m.max_seq >= seqs[i] + 10;
        if (caught_up || m.type == static_cast<std::uint32_t>(Type::kInvalidSession)) {
          done[i] = true;
          --remaining;
          slowest = std::max(slowest, ms_between(t0, Clock::now()));
          break;
        }
      }
    }
  }
  char line[128];
  const int n = std::snprintf(line, sizeof(line), "%.1f %u %u\n", slowest, remaining, invalid);
  return write(out_fd, line, static_cast<std::size_t>(n)) == n ? 0 : 1;
}

int storm(unsigned clients, unsigned processes) {
  const pid_t server = start_server(
      {"--shards", "2", "--resume-buffer-events", "64", "--stats-interval-ms", "1000"});
  const std::uint64_t guild = 77;
  // One "go" pipe per child: with a shared one, a fast child could take the
  // byte meant for a slow one.
  int ready[2], out[2];
  if (pipe(ready) || pipe(out)) return 1;
  std::vector<std::array<int, 2>> go(processes);
  std::vector<pid_t> children;
  const unsigned share = clients / processes;
  for (unsigned p = 0; p < processes; ++p) {
    if (pipe(go[p].data())) return 1;
    const pid_t pid = fork();
    if (pid == 0) _exit(storm_child(1 + p * share, share, guild, ready[1], go[p][0], out[1]));
    children.push_back(pid);
  }
  char b = 0;
  for (unsigned p = 0; p < processes; ++p) {
    if (read(ready[0], &b, 1) != 1) return 1;
  }
  std::printf("%u clients identified in one guild over %u processes\n", share * processes,
              processes);
  for (unsigned p = 0; p < processes; ++p) {
    if (write(go[p][1], &b, 1) != 1) return 1;
  }
  for (unsigned p = 0; p < processes; ++p) {
    if (read(ready[0], &b, 1) != 1) return 1;
  }
  {
    zmq::context_t ctx(1);
    zmq::socket_t pub = dealer(ctx, kPublishers);
    for (unsigned i = 0; i < 10; ++i) publish(pub, guild, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const long rss_before = rss_kb(server);
  for (unsigned p = 0; p < processes; ++p) {
    if (write(go[p][1], &b, 1) != 1) return 1;
  }
  double slowest = 0;
  unsigned left = 0, invalid = 0;
  FILE* results = fdopen(out[0], "r");
  for (unsigned p = 0; p < processes; ++p) {
    double s = 0;
    unsigned l = 0, inv = 0;
    if (std::fscanf(results, "%lf %u %u", &s, &l, &inv) != 3) return 1;
    slowest = std::max(slowest, s);
    left += l;
    invalid += inv;
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  const long rss_after = rss_kb(server);
  stop_server(server);
  std::printf(
      "all reconnected and sent RESUME at once: slowest caught up after %.1f ms; "
      "%u not caught up in 30 s, %u INVALID_SESSION\n",
      slowest, left, invalid);
  std::printf("node RSS %ld kB before the storm, %ld kB after\n", rss_before, rss_after);
  return left == 0 && invalid == 0 ? 0 : 1;
}

unsigned arg(int argc, char** argv, int i, unsigned fallback) {
  return argc > i ? static_cast<unsigned>(std::stoul(argv[i])) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "latency";
  if (mode == "latency") return latency(arg(argc, argv, 2, 1000), arg(argc, argv, 3, 20));
  if (mode == "memory") return memory(arg(argc, argv, 2, 100000));
  if (mode == "storm") return storm(arg(argc, argv, 2, 10000), arg(argc, argv, 3, 4));
  std::fprintf(stderr, "usage: %s latency|memory|storm [args]\n", argv[0]);
  return 2;
}
