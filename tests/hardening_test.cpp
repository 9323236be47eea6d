// An attacker who reaches the backend or the client endpoint gets nothing:
// invalid or unregistered internal messages are refused and counted, nobody
// crashes, healthy clients keep receiving, tokens limit guilds, failing
// auth plugins refuse, and a flood cannot grow the log without bound.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <msgpack.hpp>
#include <variant>
#include <zmq.hpp>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string packed(const msgpack::sbuffer& b) {
  return std::string(b.data(), b.size());
}

// [2, 64, name, roles, vnodes, incarnation, shards]
std::string register_header(const std::string& name, std::uint64_t roles, std::uint64_t vnodes,
                            std::uint64_t incarnation = 7) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(2, 64, name, roles, vnodes, incarnation, 1));
  return packed(b);
}

// [2, 65, version, mode, [[name, roles, vnodes, incarnation]...], []]
std::string ring_header(std::uint64_t version, const std::string& name, std::uint64_t vnodes) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(6);
  p.pack(2);
  p.pack(65);
  p.pack(version);
  p.pack(0);
  p.pack_array(1);
  p.pack(std::make_tuple(name, 1, vnodes, 1));
  p.pack_array(0);
  return packed(b);
}

// A peer on the broker's backend, as an attacker would connect it.
class BackendPeer {
 public:
  BackendPeer(const std::string& endpoint, const std::string& routing_id)
      : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, routing_id);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  // First frames of every message received within `wait`.
  std::vector<std::vector<std::string>> drain(milliseconds wait) {
    std::vector<std::vector<std::string>> out;
    const auto end = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < end) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(20));
      zmq::message_t m;
      std::vector<std::string> frames;
      while (socket_.recv(m, zmq::recv_flags::dontwait)) {
        frames.emplace_back(m.to_string());
        if (!m.more()) {
          out.push_back(std::move(frames));
          frames.clear();
        }
      }
    }
    return out;
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A broker and a node of both roles as separate processes, a healthy session
// on guild 5, and helpers to check it is still served.
class Hardening : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& node_extra = {}) {
    base_ = port_base() + 3;
    broker_ = std::make_unique<Process>(
        "sec-broker",
        std::vector<std::string>{"broker", "--insecure", "--frontend", tcp(base_), "--backend",
                                 tcp(base_ + 1), "--stats-interval-ms", "1000",
                                 // Fake guild nodes must not take guild 5.
                                 "--pin", "5=node-1"});
    std::vector<std::string> args{
        "node",         "--insecure", "--name",       "node-1",   "--broker",
        tcp(base_ + 1), "--listen",   tcp(base_ + 2), "--shards", "2"};
    args.insert(args.end(), node_extra.begin(), node_extra.end());
    node_ = std::make_unique<Process>("sec-node", args);
    ASSERT_TRUE(node_->wait_for_log("ring version", seconds(10))) << node_->log();
  }
  void start_healthy() {
    SessionRecord r;
    r.user = 1;
    r.guilds = {5};
    healthy_ = std::make_unique<Fleet>(std::vector<std::string>{tcp(base_ + 2)}, 1,
                                       std::vector<SessionRecord>{r});
    ASSERT_TRUE(healthy_->pump_until([&] { return healthy_->all_subscribed(); }, seconds(10)));
  }
  // Publishes `payload` to guild 5 and checks it is the next event the
  // healthy session gets, with no gap, and that both processes live.
  void expect_healthy(const std::string& payload) {
    const auto before = healthy_->events_received();
    hc::Publisher pub(tcp(base_));
    pub.publish(5, 1, payload);
    ASSERT_TRUE(
        healthy_->pump_until([&] { return healthy_->events_received() > before; }, seconds(5)));
    healthy_->pump(milliseconds(100));
    auto& s = healthy_->sessions()[0];
    EXPECT_EQ(s.events.back().payload, payload);
    EXPECT_EQ(stream_gap(s), "");
    EXPECT_TRUE(broker_->alive());
    EXPECT_TRUE(node_->alive());
  }

  int base_ = 0;
  std::unique_ptr<Process> broker_;
  std::unique_ptr<Process> node_;
  std::unique_ptr<Fleet> healthy_;
};

TEST_F(Hardening, InvalidRegistersAreRefusedAndNobodyCrashes) {
  start();
  start_healthy();
  BackendPeer zero(tcp(base_ + 1), "zero");
  zero.send({"", register_header("zero", 1, 0)});
  BackendPeer huge(tcp(base_ + 1), "huge");
  huge.send({"", register_header("huge", 1, 65536)});
  BackendPeer wide(tcp(base_ + 1), "wide");
  wide.send({"", register_header("wide", 1, (std::uint64_t{1} << 32) | 5)});
  BackendPeer liar(tcp(base_ + 1), "liar");
  liar.send({"", register_header("node-1", 1, 512)});  // someone else's name
  // Heavy nodes, each valid alone, until the ring would pass 65,536 virtual nodes.
  std::vector<std::unique_ptr<BackendPeer>> heavy;
  for (int i = 0; i < 8; ++i) {
    heavy.push_back(std::make_unique<BackendPeer>(tcp(base_ + 1), "heavy" + std::to_string(i)));
    heavy.back()->send({"", register_header("heavy" + std::to_string(i), 1, 8192)});
  }
  const auto answers = zero.drain(milliseconds(500));
  ASSERT_FALSE(answers.empty()) << "a refused node is told why";
  ASSERT_TRUE(broker_->wait_for_log("refused REGISTER from 'heavy", seconds(5))) << broker_->log();
  const std::string log = broker_->log();
  EXPECT_NE(log.find("refused REGISTER from 'zero': node 'zero' has weight 0"), std::string::npos)
      << log;
  EXPECT_NE(log.find("refused REGISTER from 'huge'"), std::string::npos);
  EXPECT_NE(log.find("refused REGISTER from 'wide'"), std::string::npos);
  EXPECT_NE(log.find("refused REGISTER from 'liar': the name must equal the routing id"),
            std::string::npos);
  EXPECT_NE(log.find("virtual nodes; the limit is 65536"), std::string::npos) << log;
  EXPECT_EQ(log.find("node 'zero' joined"), std::string::npos);
  // node-1 (512) + 7 x 8192 fit; the eighth heavy node is the one refused.
  EXPECT_EQ(count_of(log, "' joined"), 8u) << log;
  heavy.clear();  // they stop heartbeating and expire
  expect_healthy("after-bad-registers");
}

TEST_F(Hardening, ARingFromAnyoneButTheBrokerIsIgnored) {
  start();
  start_healthy();
  // Unregistered: the broker refuses to route it at all.
  BackendPeer stranger(tcp(base_ + 1), "stranger");
  stranger.send({"node-1", ring_header(~std::uint64_t{0} >> 1, "x", 0)});
  ASSERT_TRUE(broker_->wait_for_log("refused a message from 'stranger'", seconds(5)));
  // Registered (a session-only node may register): the broker routes it,
  // and the node refuses a RING that does not come from the broker.
  BackendPeer member(tcp(base_ + 1), "member");
  member.send({"", register_header("member", 2, 1)});
  ASSERT_TRUE(broker_->wait_for_log("node 'member' joined", seconds(5)));
  member.send({"node-1", ring_header(~std::uint64_t{0} >> 1, "x", 0)});
  ASSERT_TRUE(node_->wait_for_log("refused a message from 'member': RING from a node", seconds(5)))
      << node_->log();
  EXPECT_EQ(node_->log().find("has weight 0"), std::string::npos);
  expect_healthy("after-forged-rings");
  // The node still takes the broker's rings: a new member changes it.
  const auto rings = count_of(node_->log(), "ring version");
  BackendPeer another(tcp(base_ + 1), "another");
  another.send({"", register_header("another", 2, 1)});
  ASSERT_TRUE(node_->wait_for_log("(3 node(s))", seconds(5)));
  EXPECT_GT(count_of(node_->log(), "ring version"), rings);
}

TEST_F(Hardening, APluginPublishFromAnUnregisteredPeerIsNotDelivered) {
  start();
  start_healthy();
  BackendPeer evil(tcp(base_ + 1), "evil");
  for (int i = 0; i < 100; ++i) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(2, 71, 5, 1));  // PLUGIN_PUBLISH guild 5, kind 1
    evil.send({"", packed(b), "FORGED"});
    // And as a forged FANOUT-carrying node, straight to the node.
    evil.send({"node-1", packed(b), "FORGED"});
  }
  ASSERT_TRUE(broker_->wait_for_log("refused a message from 'evil'", seconds(5)));
  expect_healthy("real");
  for (const auto& e : healthy_->sessions()[0].events) EXPECT_NE(e.payload, "FORGED");
  ASSERT_TRUE(broker_->wait_for_log("refused_unregistered=200", seconds(5))) << broker_->log();
}

TEST_F(Hardening, TheLogStaysBoundedUnderAFloodAndCannotBeForged) {
  start();
  start_healthy();
  const std::size_t before = broker_->log().size();
  BackendPeer evil(tcp(base_ + 1), "evil\n[2099-01-01 00:00:00.000] [info] FORGED");
  const int kFlood = 50000;
  for (int i = 0; i < kFlood; ++i) evil.send({"node-1", "garbage", "x"});
  ASSERT_TRUE(broker_->wait_for_log("refused_unregistered=50000", seconds(20)))
      << broker_->log().size();
  ASSERT_TRUE(broker_->wait_for_log("more warning(s)", seconds(5)));
  const std::string log = broker_->log();
  const std::size_t grew = log.size() - before;
  // About 10 warnings a second plus a summary and the stats line: far
  // below one line per message (which was about 100 bytes each, 5 MB here).
  std::cout << "broker log grew " << grew << " bytes for " << kFlood << " bad messages\n";
  EXPECT_LT(grew, 32u * 1024) << "log grew " << grew << " bytes for " << kFlood << " messages";
  EXPECT_EQ(log.find("\n[2099-01-01"), std::string::npos) << "a routing id forged a log line";
  EXPECT_NE(log.find("evil\\x0a[2099-01-01"), std::string::npos) << "it is shown escaped";
  expect_healthy("after-flood");
}

// Signed tokens: the guilds a token grants are the guilds its user gets.
class SignedTokens : public Hardening {
 protected:
  void SetUp() override {
    secret_ = testing::TempDir() + "hearth-secret-" + std::to_string(getpid());
    std::remove(secret_.c_str());
    std::string out;
    ASSERT_EQ(run_hearth({"token", "--new-secret", secret_}, &out), 0) << out;
  }
  void TearDown() override { std::remove(secret_.c_str()); }
  std::string mint(const std::string& user, const std::string& guilds,
                   const std::string& expires_in = "3600") {
    std::string out;
    EXPECT_EQ(run_hearth({"token", "--secret", secret_, "--user", user, "--guilds", guilds,
                          "--expires-in", expires_in},
                         &out),
              0)
        << out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out.substr(out.rfind('\n') + 1);
  }
  // Messages of type T from `c`, up to n within `wait`; others are kept for
  // a later collect (an IDENTIFY's READY and SUBSCRIBEDs arrive together).
  template <class T>
  std::vector<T> collect(hc::SessionClient& c, std::size_t n, milliseconds wait = seconds(5)) {
    std::vector<T> got;
    auto& kept = kept_[&c];
    auto take = [&] {
      for (auto it = kept.begin(); it != kept.end() && got.size() < n;) {
        if (auto* x = std::get_if<T>(&*it)) {
          got.push_back(*x);
          it = kept.erase(it);
        } else {
          ++it;
        }
      }
    };
    take();
    const auto end = std::chrono::steady_clock::now() + wait;
    while (got.size() < n && std::chrono::steady_clock::now() < end) {
      c.poll(kept, milliseconds(20));
      take();
    }
    return got;
  }
  std::map<hc::SessionClient*, std::vector<hc::Message>> kept_;
  std::string secret_;
};

TEST_F(SignedTokens, ATokenForGuild1CannotSubscribeToGuild2) {
  start({"--auth", "signed", "--auth-secret", secret_});
  hc::SessionClient c(tcp(base_ + 2));
  c.identify(1, 42, mint("42", "1"), {1, 2});
  auto ready = collect<hc::Ready>(c, 1);
  ASSERT_EQ(ready.size(), 1u);
  auto subs = collect<hc::Subscribed>(c, 2);
  ASSERT_EQ(subs.size(), 2u);
  std::map<std::uint64_t, hc::Subscribed> by_guild;
  for (auto& s : subs) by_guild[s.guild_id] = s;
  EXPECT_EQ(by_guild[1].code, 0u);
  EXPECT_EQ(by_guild[2].code, 14u);  // REJECTED
  EXPECT_EQ(by_guild[2].reason, "the session's token does not grant guild 2");
  // A live SUBSCRIBE is held to the same grant.
  c.subscribe(2, ready[0].session_id, {2, 3});
  auto later = collect<hc::Subscribed>(c, 2);
  ASSERT_EQ(later.size(), 2u);
  for (auto& s : later) EXPECT_EQ(s.code, 14u) << s.guild_id;
  // Guild 2's events do not reach it; guild 1's do.
  hc::Publisher pub(tcp(base_));
  pub.publish(2, 1, "not-yours", 0);
  pub.publish(1, 1, "yours", 0);
  auto events = collect<hc::Event>(c, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "yours");
  EXPECT_EQ(events[0].guild_id, 1u);
  // "all" grants every guild.
  hc::SessionClient all(tcp(base_ + 2));
  all.identify(1, 7, mint("7", "all"), {2});
  auto all_subs = collect<hc::Subscribed>(all, 1);
  ASSERT_EQ(all_subs.size(), 1u);
  EXPECT_EQ(all_subs[0].code, 0u);
}

TEST_F(SignedTokens, BadTokensAreRefusedAndAConnectionIsClosedAfterFiveFailures) {
  start({"--auth", "signed", "--auth-secret", secret_});
  hc::SessionClient c(tcp(base_ + 2));
  const std::string other_user = mint("43", "all");
  const std::string expired = mint("42", "all", "0");
  c.identify(1, 42, other_user, {});
  c.identify(2, 42, expired, {});
  c.identify(3, 42, "guess", {});
  c.identify(4, 42, other_user.substr(0, other_user.size() - 1) + "0", {});
  auto errors = collect<hc::ServerError>(c, 4);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0].text, "token was issued for another user");
  EXPECT_EQ(errors[1].text, "token expired");
  for (auto& e : errors) EXPECT_EQ(e.code, 5u);  // AUTH_FAILED
  c.identify(5, 42, "guess", {});
  auto fifth = collect<hc::ServerError>(c, 1);
  ASSERT_EQ(fifth.size(), 1u);
  EXPECT_NE(fifth[0].text.find("this connection is closed"), std::string::npos) << fifth[0].text;
  // Nothing more is heard from it, not even a valid IDENTIFY or a heartbeat.
  c.identify(6, 42, mint("42", "all"), {});
  c.heartbeat(1);
  std::vector<hc::Message> msgs;
  c.poll(msgs, milliseconds(500));
  EXPECT_TRUE(msgs.empty());
  // A new connection is heard (a different address would be too).
  hc::SessionClient fresh(tcp(base_ + 2));
  fresh.identify(1, 42, mint("42", "all"), {});
  EXPECT_EQ(collect<hc::Ready>(fresh, 1).size(), 1u);
}

TEST_F(SignedTokens, AnAddressIsThrottledAfterItsFailures) {
  start({"--auth", "signed", "--auth-secret", secret_, "--identify-failures-per-address", "6"});
  std::size_t refused = 0;
  for (int conn = 0; conn < 2; ++conn) {
    hc::SessionClient c(tcp(base_ + 2));
    for (int i = 0; i < 3; ++i) c.identify(i + 1, 42, "guess", {});
    refused += collect<hc::ServerError>(c, 3).size();
  }
  EXPECT_EQ(refused, 6u);
  // The same address, a new connection, a valid token: not checked now.
  hc::SessionClient c(tcp(base_ + 2));
  c.identify(1, 42, mint("42", "all"), {});
  auto err = collect<hc::ServerError>(c, 1);
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0].code, 5u);
  EXPECT_NE(err[0].text.find("from this address"), std::string::npos) << err[0].text;
}

TEST_F(Hardening, AFailingAuthPluginRefusesAndOnSubscribeCanVeto) {
  start({"--plugin",
         std::string("guard=") + HEARTH_TEST_PLUGIN_DIR + "/hearth_test_plugin_guard.so",
         "--plugin-required", "guard"});
  hc::SessionClient c(tcp(base_ + 2));
  c.identify(1, 13, "t", {});  // on_identify throws for user 13
  std::vector<hc::Message> msgs;
  std::optional<hc::ServerError> err;
  const auto end = std::chrono::steady_clock::now() + seconds(5);
  while (!err && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    c.poll(msgs, milliseconds(20));
    for (auto& m : msgs) {
      if (auto* e = std::get_if<hc::ServerError>(&m)) err = *e;
      EXPECT_FALSE(std::holds_alternative<hc::Ready>(m)) << "a failing auth plugin admitted";
    }
  }
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 14u);  // REJECTED
  EXPECT_EQ(err->text, "plugin guard failed to check the session; refused");

  hc::SessionClient ok(tcp(base_ + 2));
  ok.identify(1, 14, "t", {5, 666, 667});
  std::map<std::uint64_t, hc::Subscribed> subs;
  const auto until = std::chrono::steady_clock::now() + seconds(5);
  while (subs.size() < 3 && std::chrono::steady_clock::now() < until) {
    msgs.clear();
    ok.poll(msgs, milliseconds(20));
    for (auto& m : msgs) {
      if (auto* s = std::get_if<hc::Subscribed>(&m)) subs[s->guild_id] = *s;
    }
  }
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[5].code, 0u);
  EXPECT_EQ(subs[666].code, 14u);
  EXPECT_EQ(subs[666].reason, "guild 666 is closed to user 14");
  EXPECT_EQ(subs[667].code, 14u);
  EXPECT_EQ(subs[667].reason, "plugin guard failed to check the subscription");
  EXPECT_TRUE(node_->alive());
}

}  // namespace
}  // namespace hearth::test
