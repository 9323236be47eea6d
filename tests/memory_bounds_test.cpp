// Memory bounded in bytes (docs/reliability.md, "Memory bounds"): clients
// that stop reading cost a session node at most their output limit each, and
// oversized publishes are refused at the broker without growing it.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <fstream>
#include <thread>
#include <variant>
#include <zmq.hpp>

#include "cluster.hpp"
#include "common/wire.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1 << 20;

// Under AddressSanitizer freed memory stays resident (its quarantine) and the
// allocator settings of `hearth` do not apply: RSS says nothing there, so
// only the behaviour is checked.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif

// A /proc/<pid>/status field in bytes ("VmRSS", "VmHWM": the peak).
std::uint64_t status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == field + ":") {
      std::uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

// A client that identifies one session, waits for READY and SUBSCRIBED, then
// stops reading. Its own buffers are small (a 2-message pipe, a 64 KiB
// socket buffer), so what it does not read piles up in the node.
class StoppedReader {
 public:
  StoppedReader(zmq::context_t& ctx, const std::string& endpoint, std::uint64_t user,
                std::uint64_t guild)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::rcvhwm, 2);
    socket_.set(zmq::sockopt::rcvbuf, 64 << 10);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
    wire::HeaderWriter w(protocol::Type::kIdentify, 4);
    w.u64(user).u64(user).str("t");
    w.array(1).u64(guild);
    socket_.send(zmq::buffer(w.view()));
  }

  // The type of each message's header, reading for up to `timeout`.
  std::vector<std::uint32_t> read(std::chrono::milliseconds timeout, std::size_t max) {
    std::vector<std::uint32_t> types;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (types.size() < max && closed_code_ == 0 && std::chrono::steady_clock::now() < end) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, 20ms) == 0) continue;
      zmq::message_t header;
      if (!socket_.recv(header, zmq::recv_flags::dontwait)) continue;
      wire::HeaderReader r(header.data(), header.size());
      types.push_back(r.ok() ? r.type() : 0);
      if (r.ok() && r.type() == static_cast<std::uint32_t>(protocol::Type::kSessionClosed)) {
        closed_code_ = static_cast<std::uint32_t>(r.peek_u64(1));
      }
      while (header.more()) {
        if (!socket_.recv(header, zmq::recv_flags::none)) break;
      }
    }
    return types;
  }
  std::uint32_t closed_code() const { return closed_code_; }

 private:
  zmq::socket_t socket_;
  std::uint32_t closed_code_ = 0;
};

// 8 clients stop reading while 4 KiB events flood their guild. The node's
// peak RSS stays within its baseline + 8 x --client-output-hard-bytes
// (32 MiB by default) + 128 MiB for everything else that grows with traffic
// (the node's input queues, replay buffers of 1 MiB per session, batches,
// allocator slack): 395 MiB here, where the unbounded-in-bytes queues of
// before reached 550 MiB. Every stopped connection is closed with
// SLOW_CONSUMER, and a client that reads gets every event, in order.
TEST(MemoryBounds, StoppedReadersCostAtMostTheirOutputLimit) {
  const int base = port_base();
  Process broker("mem-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1)});
  Process node("mem-node",
               {"node", "--insecure", "--name", "n1", "--broker", tcp(base + 1), "--listen",
                tcp(base + 2), "--shards", "2", "--stats-interval-ms", "1000"});
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s)", 10s)) << broker.log();

  constexpr std::uint64_t kGuild = 9;
  std::vector<SessionRecord> records(1);
  records[0].user = 1;
  records[0].guilds = {kGuild};
  Fleet healthy({tcp(base + 2)}, 1, records);
  ASSERT_TRUE(healthy.pump_until([&] { return healthy.all_subscribed(); }, 10s));

  zmq::context_t ctx(1);
  std::vector<std::unique_ptr<StoppedReader>> stopped;
  for (std::uint64_t i = 0; i < 8; ++i) {
    stopped.push_back(std::make_unique<StoppedReader>(ctx, tcp(base + 2), 100 + i, kGuild));
  }
  for (auto& s : stopped) ASSERT_EQ(s->read(10s, 2).size(), 2u);  // READY, SUBSCRIBED

  const std::uint64_t baseline = status_bytes(node.pid(), "VmRSS");
  ASSERT_GT(baseline, 0u);

  // 20,000 x 4 KiB = 80 MiB for each stopped reader: more than its 32 MiB
  // limit and what its kernel socket buffers take.
  constexpr unsigned kEvents = 20000;
  hc::Publisher pub(tcp(base));
  std::string payload(4096, 'p');
  for (unsigned i = 0; i < kEvents; ++i) {
    std::memcpy(payload.data(), &i, sizeof(i));
    ASSERT_TRUE(pub.publish(kGuild, 1, payload));
    if (i % 50 == 49) {
      // Paced (a few thousand events/s) so the healthy client keeps up.
      healthy.pump_until([&] { return healthy.events_received() + 400 >= i; }, 5s);
    }
  }
  ASSERT_TRUE(healthy.pump_until([&] { return healthy.events_received() >= kEvents; }, 30s))
      << "healthy session got " << healthy.events_received();
  const std::uint64_t peak = status_bytes(node.pid(), "VmHWM");
  const std::uint64_t after = status_bytes(node.pid(), "VmRSS");
  std::printf("node RSS: baseline %llu MiB, peak %llu MiB, after %llu MiB\n",
              static_cast<unsigned long long>(baseline / kMiB),
              static_cast<unsigned long long>(peak / kMiB),
              static_cast<unsigned long long>(after / kMiB));

  auto& s = healthy.sessions()[0];
  EXPECT_TRUE(s.closed.empty());
  ASSERT_EQ(s.events.size(), kEvents);
  ASSERT_EQ(stream_gap(s), "");
  for (unsigned i = 0; i < kEvents; ++i) {
    unsigned n = 0;
    std::memcpy(&n, s.events[i].payload.data(), sizeof(n));
    ASSERT_EQ(n, i);
  }

  if (kRssMeaningful) {
    EXPECT_LT(peak, baseline + 8 * 32 * kMiB + 128 * kMiB);
  }

  // Each stopped reader, reading again, finds a prefix of events and then
  // SESSION_CLOSED(SLOW_CONSUMER).
  for (auto& r : stopped) {
    r->read(20s, ~std::size_t{0} >> 1);
    EXPECT_EQ(r->closed_code(), 8u);  // SLOW_CONSUMER
  }
  EXPECT_TRUE(node.alive());
}

// 10 MB publishes get TOO_LARGE at the broker (up to --max-frame-bytes,
// 16 MiB by default), and the broker's RSS does not grow with them: its peak
// stays within 64 MiB of where it started, and it ends within 16 MiB.
TEST(MemoryBounds, TenMegabytePublishesGetTooLargeAndBrokerStaysSmall) {
  const int base = port_base() + 3;
  Process broker("big-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1)});
  Process node("big-node", {"node", "--insecure", "--name", "n1", "--broker", tcp(base + 1),
                            "--listen", tcp(base + 2), "--shards", "1"});
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s)", 10s)) << broker.log();

  hc::Publisher pub(tcp(base));
  std::vector<hc::Message> msgs;
  auto answers = [&](unsigned want, std::chrono::milliseconds timeout) {
    std::vector<hc::ServerError> errors;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (errors.size() < want && std::chrono::steady_clock::now() < end) {
      msgs.clear();
      pub.poll(msgs, 50ms);
      for (auto& m : msgs) {
        if (auto* e = std::get_if<hc::ServerError>(&m)) errors.push_back(*e);
        EXPECT_FALSE(std::holds_alternative<hc::PublishAck>(m));
      }
    }
    return errors;
  };
  // A small publish, acknowledged, so the broker has done its setup.
  ASSERT_TRUE(pub.publish(1, 1, "warm", 1));
  const auto end = std::chrono::steady_clock::now() + 10s;
  bool acked = false;
  while (!acked && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    pub.poll(msgs, 50ms);
    for (auto& m : msgs) acked |= std::holds_alternative<hc::PublishAck>(m);
  }
  ASSERT_TRUE(acked);
  const std::uint64_t baseline = status_bytes(broker.pid(), "VmRSS");

  constexpr unsigned kBig = 60;  // 600 MB through the broker
  const std::string big(10'000'000, 'x');
  for (unsigned i = 0; i < kBig; ++i) ASSERT_TRUE(pub.publish(1, 1, big, 100 + i));
  const auto errors = answers(kBig, 30s);
  ASSERT_EQ(errors.size(), kBig);
  for (unsigned i = 0; i < kBig; ++i) {
    EXPECT_EQ(errors[i].code, 4u) << errors[i].text;  // TOO_LARGE
    EXPECT_EQ(errors[i].ref, 100 + i);
  }
  const std::uint64_t peak = status_bytes(broker.pid(), "VmHWM");
  const std::uint64_t after = status_bytes(broker.pid(), "VmRSS");
  std::printf("broker RSS: baseline %llu MiB, peak %llu MiB, after %llu MiB\n",
              static_cast<unsigned long long>(baseline / kMiB),
              static_cast<unsigned long long>(peak / kMiB),
              static_cast<unsigned long long>(after / kMiB));
  if (kRssMeaningful) {
    EXPECT_LT(peak, baseline + 64 * kMiB);
    EXPECT_LT(after, baseline + 16 * kMiB);
  }

  // A frame beyond --max-frame-bytes drops the connection instead; the
  // broker carries on for everyone else.
  {
    hc::Publisher huge(tcp(base));
    ASSERT_TRUE(huge.publish(1, 1, std::string(17 << 20, 'y'), 7));
    std::vector<hc::Message> none;
    huge.poll(none, 500ms);
    EXPECT_TRUE(none.empty());
  }
  ASSERT_TRUE(pub.publish(1, 1, "still here", 2));
  bool acked_again = false;
  const auto end2 = std::chrono::steady_clock::now() + 10s;
  while (!acked_again && std::chrono::steady_clock::now() < end2) {
    msgs.clear();
    pub.poll(msgs, 50ms);
    for (auto& m : msgs) acked_again |= std::holds_alternative<hc::PublishAck>(m);
  }
  EXPECT_TRUE(acked_again);
  EXPECT_TRUE(broker.alive());
}

// Above --client-output-soft-bytes for --client-output-soft-ms closes a
// connection even though it never reached the hard limit.
TEST(MemoryBounds, SoftOutputLimitHeldTooLongClosesTheConnection) {
  const int base = port_base() + 6;
  Process broker("soft-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1)});
  Process node("soft-node", {"node",
                             "--insecure",
                             "--name",
                             "n1",
                             "--broker",
                             tcp(base + 1),
                             "--listen",
                             tcp(base + 2),
                             "--shards",
                             "1",
                             "--client-output-soft-bytes",
                             "262144",
                             "--client-output-soft-ms",
                             "300",
                             "--client-output-hard-bytes",
                             "536870912",
                             "--client-backlog",
                             "100000",
                             "--client-backlog-bytes",
                             "536870912"});
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s)", 10s)) << broker.log();
  zmq::context_t ctx(1);
  StoppedReader reader(ctx, tcp(base + 2), 5, 9);
  ASSERT_EQ(reader.read(10s, 2).size(), 2u);
  // 16 MiB: more than the kernel's socket buffers take, so the node holds
  // some (more than 256 KiB, far less than the hard limit).
  hc::Publisher pub(tcp(base));
  const std::string payload(4096, 's');
  for (unsigned i = 0; i < 4096; ++i) ASSERT_TRUE(pub.publish(9, 1, payload));
  ASSERT_TRUE(node.wait_for_log("--client-output-soft-ms", 10s)) << node.log();
  EXPECT_EQ(node.log().find("past --client-output-hard-bytes"), std::string::npos);
  reader.read(20s, ~std::size_t{0} >> 1);
  EXPECT_EQ(reader.closed_code(), 8u);  // SLOW_CONSUMER
}

// Above --max-memory, a node answers IDENTIFY, SUBSCRIBE and RESUME with
// OVERLOADED (ref = request_id), and the broker answers PUBLISH with it; the
// refusals are counted and logged once per 10 s, not once each.
TEST(MemoryBounds, AboveTheMemoryCeilingNewWorkIsRefused) {
  const int base = port_base() + 9;
  // One byte: always above it.
  Process broker("ceiling-broker", {"broker", "--insecure", "--frontend", tcp(base), "--backend",
                                    tcp(base + 1), "--max-memory", "1"});
  Process node("ceiling-node", {"node", "--insecure", "--name", "n1", "--broker", tcp(base + 1),
                                "--listen", tcp(base + 2), "--shards", "1", "--max-memory", "1"});
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s)", 10s)) << broker.log();

  hc::SessionClient client(tcp(base + 2));
  hc::Publisher pub(tcp(base));
  std::vector<hc::Message> msgs;
  auto error_for = [&](auto& c, std::uint64_t ref) -> std::optional<hc::ServerError> {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end) {
      msgs.clear();
      c.poll(msgs, 50ms);
      for (auto& m : msgs) {
        if (auto* e = std::get_if<hc::ServerError>(&m); e && e->ref == ref) return *e;
        EXPECT_FALSE(std::holds_alternative<hc::Ready>(m));
        EXPECT_FALSE(std::holds_alternative<hc::PublishAck>(m));
      }
    }
    return std::nullopt;
  };
  for (std::uint64_t i = 1; i <= 3; ++i) {
    client.identify(10 + i, 1, "t", {1});
    auto e = error_for(client, 10 + i);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 9u) << e->text;  // OVERLOADED
  }
  client.subscribe(20, 12345, {1});
  auto sub = error_for(client, 20);
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->code, 9u);
  client.resume(21, 12345, std::string(16, 'k'), 0);
  auto res = error_for(client, 21);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->code, 9u);
  ASSERT_TRUE(pub.publish(1, 1, "x", 30));
  auto p = error_for(pub, 30);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->code, 9u);
  // A HEARTBEAT is not new work: still answered.
  client.heartbeat(77);
  bool acked = false;
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (!acked && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    client.poll(msgs, 50ms);
    for (auto& m : msgs) {
      if (auto* a = std::get_if<hc::HeartbeatAck>(&m)) acked = a->nonce == 77;
    }
  }
  EXPECT_TRUE(acked);
  const std::string log = node.log();
  const auto first = log.find("above --max-memory");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("above --max-memory", first + 1), std::string::npos) << "logged per refusal";
  EXPECT_TRUE(broker.wait_for_log("above --max-memory", 5s));
}

// A guild node that stops reading (SIGSTOP) fills the broker's queue for it
// up to --max-pending-bytes-per-node; the broker then stops reading the
// publisher, whose send times out: it is never blocked forever, and the
// broker holds at most that queue and its receive buffer.
TEST(MemoryBounds, PublisherToAStoppedNodeTimesOutAndTheBrokerStaysBounded) {
  const int base = port_base() + 12;
  Process broker("bp-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1),
                  "--node-timeout-ms", "60000", "--max-pending-bytes-per-node", "8388608"});
  Process node("bp-node", {"node", "--insecure", "--name", "n1", "--broker", tcp(base + 1),
                           "--listen", tcp(base + 2), "--shards", "1"});
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s)", 10s)) << broker.log();
  hc::Publisher pub(tcp(base), 300ms);
  ASSERT_TRUE(pub.publish(1, 1, "warm", 1));
  std::vector<hc::Message> msgs;
  pub.poll(msgs, 2s);
  const std::uint64_t baseline = status_bytes(broker.pid(), "VmRSS");

  kill(node.pid(), SIGSTOP);
  const std::string payload(1 << 20, 'b');
  unsigned sent = 0;
  const auto start = std::chrono::steady_clock::now();
  // 100,000 MiB if nothing pushed back; the publisher's own queue (64 MiB)
  // and a 300 ms timeout end it.
  while (sent < 100000 && pub.publish(1, 1, payload)) ++sent;
  const auto took = std::chrono::steady_clock::now() - start;
  const std::uint64_t peak = status_bytes(broker.pid(), "VmHWM");
  kill(node.pid(), SIGCONT);
  std::printf("sent %u MiB before the send timed out; broker RSS %llu -> peak %llu MiB\n", sent,
              static_cast<unsigned long long>(baseline / kMiB),
              static_cast<unsigned long long>(peak / kMiB));
  EXPECT_LT(sent, 100000u);
  EXPECT_LT(took, 30s);
  // 8 MiB queued for the node, 16 frames of receive buffer, kernel and
  // allocator slack.
  if (kRssMeaningful) {
    EXPECT_LT(peak, baseline + 8 * kMiB + 16 * kMiB + 40 * kMiB);
  }
  EXPECT_TRUE(broker.alive());
}

}  // namespace
}  // namespace hearth::test
