// CURVE on every link (docs/security.md), with real processes on loopback:
// who gets in, who does not, and what an admitted publisher may do.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <zmq.hpp>

#include "cluster.hpp"
#include "common/curve_keys.hpp"
#include "common/frames.hpp"
#include "common/internal.hpp"
#include "common/wire.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint32_t kForbidden = 17;

// A directory of key pairs made by `hearth keygen`, removed afterwards.
class KeyDir {
 public:
  KeyDir() : path_("/tmp/hearth-test-" + std::to_string(::getpid()) + "-keys") {
    fs::remove_all(path_);
    fs::create_directories(path_ + "/nodes");
  }
  ~KeyDir() { fs::remove_all(path_); }
  // Writes NAME.key and NAME.pub in the directory (or its subdirectory `sub`).
  void keygen(const std::string& name, const std::string& sub = "") {
    std::string out;
    const std::string dir = sub.empty() ? path_ : path_ + "/" + sub;
    ASSERT_EQ(run_hearth({"keygen", name, "--dir", dir}, &out), 0) << out;
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  CurveKeyPair pair(const std::string& file_name) const {
    return load_secret_key_file(file(file_name));
  }
  std::string pub(const std::string& file_name) const {
    return load_public_key_file(file(file_name));
  }

 private:
  std::string path_;
};

std::vector<std::string> node_args(const KeyDir& keys, const std::string& name,
                                   const std::string& roles, int broker, int listen,
                                   const std::string& key_file,
                                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"node",
                                   "--name",
                                   name,
                                   "--roles",
                                   roles,
                                   "--broker",
                                   tcp(broker),
                                   "--listen",
                                   tcp(listen),
                                   "--shards",
                                   "1",
                                   "--heartbeat-ms",
                                   "200",
                                   "--key",
                                   keys.file(key_file),
                                   "--broker-key",
                                   keys.file("broker.pub")};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Sends a HEARTBEAT and waits for its answer: a peer the server refused
// (mechanism or key) never gets one.
template <class Client>
bool answered(Client& c, std::chrono::milliseconds wait = 1500ms) {
  c.heartbeat(7);
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end) {
    c.poll(msgs, 50ms);
    for (auto& m : msgs) {
      if (auto* a = std::get_if<hc::HeartbeatAck>(&m); a && a->nonce == 7) return true;
    }
    msgs.clear();
  }
  return false;
}

hc::Curve curve_of(const KeyDir& keys, const std::string& server_pub, const std::string& own) {
  return hc::Curve::from_files(keys.file(server_pub), own.empty() ? "" : keys.file(own));
}

// One session on `client` following `guild`; true once it is subscribed.
bool subscribe(hc::SessionClient& client, std::uint64_t guild) {
  client.identify(1, 42, "token", {guild});
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end) {
    client.poll(msgs, 50ms);
    for (auto& m : msgs) {
      if (auto* s = std::get_if<hc::Subscribed>(&m); s && s->code == 0) return true;
    }
    msgs.clear();
  }
  return false;
}

// Payloads of the events that reach `client` within `wait`.
std::vector<std::string> events(hc::SessionClient& client, std::chrono::milliseconds wait,
                                std::size_t want) {
  std::vector<std::string> got;
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end && got.size() < want) {
    client.poll(msgs, 50ms);
    for (auto& m : msgs) {
      if (auto* e = std::get_if<hc::Event>(&m)) got.push_back(e->payload);
    }
    msgs.clear();
  }
  return got;
}

// The answer to a PUBLISH with `ack_id`: a PublishAck, a ServerError, or
// nothing (monostate) within the wait.
std::variant<std::monostate, hc::PublishAck, hc::ServerError> publish(hc::Publisher& p,
                                                                      std::uint64_t guild,
                                                                      const std::string& payload,
                                                                      std::uint64_t ack_id) {
  p.publish(guild, 1, payload, ack_id);
  std::vector<hc::Message> msgs;
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    p.poll(msgs, 50ms);
    for (auto& m : msgs) {
      if (auto* a = std::get_if<hc::PublishAck>(&m); a && a->ack_id == ack_id) return *a;
      if (auto* e = std::get_if<hc::ServerError>(&m); e && e->ref == ack_id) return *e;
    }
    msgs.clear();
  }
  return std::monostate{};
}

TEST(Security, KeygenWritesASecretOnlyItsOwnerReadsAndNeverOverwrites) {
  KeyDir keys;
  keys.keygen("broker");
  struct stat st {};
  ASSERT_EQ(::stat(keys.file("broker.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const CurveKeyPair pair = keys.pair("broker.key");
  EXPECT_EQ(pair.public_key, keys.pub("broker.pub"));
  EXPECT_EQ(curve_public_of(pair.secret_key), pair.public_key);
  std::string out;
  EXPECT_EQ(run_hearth({"keygen", "broker", "--dir", keys.file("")}, &out), 2);
  EXPECT_NE(out.find("never overwrites"), std::string::npos) << out;
  EXPECT_EQ(keys.pair("broker.key").secret_key, pair.secret_key);
}

TEST(Security, ClusterProcessesRefuseToStartWithoutKeysUnlessInsecure) {
  const int base = port_base();
  KeyDir keys;
  keys.keygen("broker");
  keys.keygen("pub-a");
  keys.keygen("n1", "nodes");
  std::string out;
  EXPECT_EQ(run_hearth({"broker", "--frontend", tcp(base), "--backend", tcp(base + 1)}, &out), 2);
  EXPECT_NE(out.find("--insecure"), std::string::npos) << out;
  EXPECT_NE(out.find("--node-keys"), std::string::npos) << out;
  // Keys on the backend only: the frontend still admits anyone, so still refused.
  EXPECT_EQ(run_hearth({"broker", "--frontend", tcp(base), "--backend", tcp(base + 1), "--key",
                        keys.file("broker.key"), "--node-keys", keys.file("nodes")},
                       &out),
            2);
  EXPECT_NE(out.find("frontend"), std::string::npos) << out;
  EXPECT_EQ(run_hearth({"node", "--broker", tcp(base + 1), "--listen", tcp(base + 2)}, &out), 2);
  EXPECT_NE(out.find("--broker-key"), std::string::npos) << out;
  EXPECT_EQ(run_hearth({"node", "--broker-key", keys.file("broker.pub")}, &out), 2);
  EXPECT_NE(out.find("needs --key"), std::string::npos) << out;
  EXPECT_EQ(run_hearth({"node", "--client-security", "curve", "--insecure"}, &out), 2);
  EXPECT_NE(out.find("needs --key"), std::string::npos) << out;
  // A publisher outside every guild list is a usage error, not a silent deny-all.
  std::ofstream(keys.file("bad-publishers")) << "pub-a pub-a.pub 10-5\n";
  EXPECT_EQ(run_hearth({"broker", "--frontend", tcp(base), "--backend", tcp(base + 1), "--key",
                        keys.file("broker.key"), "--publisher-keys", keys.file("bad-publishers"),
                        "--insecure"},
                       &out),
            2);
  EXPECT_NE(out.find("bad-publishers:1"), std::string::npos) << out;

  Process insecure("insecure-broker",
                   {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1), "--insecure"});
  EXPECT_TRUE(insecure.wait_for_log("INSECURE", 5s)) << insecure.log();
  EXPECT_TRUE(insecure.wait_for_log("publishers on", 5s)) << insecure.log();
}

class SecuredCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"guild-1", "session-1", "session-2"}) keys_.keygen(n, "nodes");
    for (const char* n : {"broker", "pub-a", "pub-all", "rogue", "evil"}) keys_.keygen(n);
    std::ofstream(keys_.file("publishers")) << "# name  key  guilds\n"
                                               "pub-a   pub-a.pub   1-10,77\n"
                                               "pub-all "
                                            << keys_.pub("pub-all.pub") << " all\n";
    broker_ = std::make_unique<Process>(
        "sec-broker",
        std::vector<std::string>{"broker", "--frontend", tcp(base_), "--backend", tcp(base_ + 1),
                                 "--node-timeout-ms", "1000", "--key", keys_.file("broker.key"),
                                 "--node-keys", keys_.file("nodes"), "--publisher-keys",
                                 keys_.file("publishers")});
    guild_ = std::make_unique<Process>("sec-guild", node_args(keys_, "guild-1", "guild", base_ + 1,
                                                              base_ + 2, "nodes/guild-1.key"));
    session_ = std::make_unique<Process>(
        "sec-session",
        node_args(keys_, "session-1", "session", base_ + 1, base_ + 3, "nodes/session-1.key"));
    // The operator chose NULL on this node's client endpoint.
    plain_ = std::make_unique<Process>(
        "sec-session-null", node_args(keys_, "session-2", "session", base_ + 1, base_ + 4,
                                      "nodes/session-2.key", {"--client-security", "null"}));
    ASSERT_TRUE(broker_->wait_for_log("with 1 guild node(s) of 3 node(s)", 10s)) << broker_->log();
  }

  const int base_ = port_base();
  KeyDir keys_;
  std::unique_ptr<Process> broker_, guild_, session_, plain_;
};

TEST_F(SecuredCluster, EventsFlowEndToEndOverCurve) {
  hc::SessionClient client(tcp(base_ + 3), curve_of(keys_, "nodes/session-1.pub", ""));
  ASSERT_TRUE(subscribe(client, 5));
  hc::Publisher pub(tcp(base_), curve_of(keys_, "broker.pub", "pub-a.key"));
  const auto answer = publish(pub, 5, "over-curve", 1);
  ASSERT_TRUE(std::holds_alternative<hc::PublishAck>(answer));
  EXPECT_EQ(events(client, 5s, 1), std::vector<std::string>{"over-curve"});
  // A publisher listed for "all" reaches any guild.
  hc::Publisher all(tcp(base_), curve_of(keys_, "broker.pub", "pub-all.key"));
  EXPECT_TRUE(std::holds_alternative<hc::PublishAck>(publish(all, 5, "from-all", 2)));
  EXPECT_EQ(events(client, 5s, 1), std::vector<std::string>{"from-all"});
  for (auto* p : {broker_.get(), guild_.get(), session_.get(), plain_.get()}) {
    EXPECT_TRUE(p->alive());
  }
}

TEST_F(SecuredCluster, APublisherCannotPublishOutsideItsGuilds) {
  hc::SessionClient client(tcp(base_ + 3), curve_of(keys_, "nodes/session-1.pub", ""));
  ASSERT_TRUE(subscribe(client, 50));
  hc::Publisher pub(tcp(base_), curve_of(keys_, "broker.pub", "pub-a.key"));
  const auto refused = publish(pub, 50, "not-yours", 9);
  ASSERT_TRUE(std::holds_alternative<hc::ServerError>(refused));
  const auto& err = std::get<hc::ServerError>(refused);
  EXPECT_EQ(err.code, kForbidden) << err.text;
  EXPECT_NE(err.text.find("pub-a"), std::string::npos) << err.text;
  // Refused even without an ack id: errors always come back.
  pub.publish(50, 1, "not-yours-either", 0);
  EXPECT_TRUE(events(client, 1s, 1).empty());
  // Inside its ranges it may.
  EXPECT_TRUE(std::holds_alternative<hc::PublishAck>(publish(pub, 77, "mine", 10)));
  EXPECT_TRUE(std::holds_alternative<hc::PublishAck>(publish(pub, 10, "mine", 11)));
  EXPECT_EQ(std::get<hc::ServerError>(publish(pub, 11, "x", 12)).code, kForbidden);
}

TEST_F(SecuredCluster, NullAndUnknownKeysGetNothingFromTheFrontend) {
  hc::SessionClient client(tcp(base_ + 3), curve_of(keys_, "nodes/session-1.pub", ""));
  ASSERT_TRUE(subscribe(client, 5));
  // Each publishes at once (queued before its handshake fails; a send after
  // that has no connection to queue on), then asks for a HEARTBEAT_ACK.
  hc::Publisher null_pub(tcp(base_));
  null_pub.publish(5, 1, "from-null", 0);
  EXPECT_FALSE(answered(null_pub));
  hc::Publisher unlisted(tcp(base_), curve_of(keys_, "broker.pub", "evil.key"));
  unlisted.publish(5, 1, "from-unlisted", 0);
  EXPECT_FALSE(answered(unlisted));
  // The right client key with the wrong server key: the client refuses the server.
  hc::Publisher wrong_server(tcp(base_), curve_of(keys_, "evil.pub", "pub-a.key"));
  wrong_server.publish(5, 1, "to-wrong-server", 0);
  EXPECT_FALSE(answered(wrong_server));
  // Over CURVE the library says so instead of blocking for ever: the send
  // times out (publish() returns false).
  EXPECT_FALSE(unlisted.publish(5, 1, "again", 0));
  hc::Publisher good(tcp(base_), curve_of(keys_, "broker.pub", "pub-a.key"));
  EXPECT_TRUE(answered(good));
  good.publish(5, 1, "from-good", 0);
  EXPECT_EQ(events(client, 2s, 2), std::vector<std::string>{"from-good"});
  EXPECT_TRUE(broker_->wait_for_log("is not listed", 2s)) << broker_->log();
}

TEST_F(SecuredCluster, NullAndUnknownNodesCannotJoinTheBackend) {
  // A raw NULL peer sends a REGISTER as a node would.
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::routing_id, "intruder");
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(tcp(base_ + 1));
  wire::HeaderWriter w(static_cast<std::uint32_t>(internal::Type::kRegister), 5);
  w.str("intruder").u64(1).u64(512).u64(1).u64(1);
  raw.send(zmq::message_t(), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(w.view()));
  // A node with a key the broker was not given, one with no key at all, and a
  // listed node that was told another broker's key.
  Process rogue("sec-rogue", node_args(keys_, "rogue", "guild", base_ + 1, base_ + 5, "rogue.key"));
  Process null_node("sec-null-node",
                    {"node", "--name", "null-node", "--roles", "guild", "--broker", tcp(base_ + 1),
                     "--listen", tcp(base_ + 6), "--heartbeat-ms", "200", "--insecure"});
  Process misled("sec-misled",
                 {"node", "--name", "guild-1", "--roles", "guild", "--broker", tcp(base_ + 1),
                  "--listen", tcp(base_ + 7), "--heartbeat-ms", "200", "--key",
                  keys_.file("nodes/guild-1.key"), "--broker-key", keys_.file("evil.pub")});
  EXPECT_TRUE(broker_->wait_for_log("is not listed", 5s)) << broker_->log();
  std::this_thread::sleep_for(2s);
  const std::string log = broker_->log();
  for (const char* name : {"intruder", "rogue", "null-node"}) {
    EXPECT_EQ(log.find(std::string("'") + name + "'"), std::string::npos) << name << "\n" << log;
  }
  EXPECT_EQ(log.find("of 4 node(s)"), std::string::npos) << log;
  EXPECT_TRUE(misled.alive());
  EXPECT_TRUE(broker_->alive());
  // The real guild-1 still serves: a publish is acknowledged.
  hc::Publisher pub(tcp(base_), curve_of(keys_, "broker.pub", "pub-a.key"));
  EXPECT_TRUE(std::holds_alternative<hc::PublishAck>(publish(pub, 3, "still-here", 1)));
}

TEST_F(SecuredCluster, SessionClientsUseCurveOrTheNullEndpointTheOperatorChose) {
  // NULL on the CURVE client endpoint: nothing.
  hc::SessionClient null_client(tcp(base_ + 3));
  EXPECT_FALSE(answered(null_client));
  // CURVE with the wrong node key: the client refuses the node.
  hc::SessionClient wrong(tcp(base_ + 3), curve_of(keys_, "nodes/session-2.pub", ""));
  EXPECT_FALSE(answered(wrong));
  // CURVE with the node's key, and a plain libzmq client on the NULL endpoint:
  // both receive the same event.
  hc::SessionClient secured(tcp(base_ + 3), curve_of(keys_, "nodes/session-1.pub", "evil.key"));
  ASSERT_TRUE(subscribe(secured, 7));
  zmq::context_t ctx(1);
  zmq::socket_t plain(ctx, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(tcp(base_ + 4));
  wire::HeaderWriter identify(protocol::Type::kIdentify, 4);
  identify.u64(1).u64(43).str("token").u64_array(std::vector<std::uint64_t>{7});
  plain.send(zmq::buffer(identify.view()));
  bool subscribed = false;
  const auto end = std::chrono::steady_clock::now() + 10s;
  Frames frames;
  while (!subscribed && std::chrono::steady_clock::now() < end) {
    zmq::pollitem_t item{plain.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 50ms);
    while (recv_frames(plain, frames)) {
      wire::HeaderReader r(frames[0].data(), frames[0].size());
      subscribed |= r.ok() && r.type() == static_cast<std::uint32_t>(protocol::Type::kSubscribed);
    }
  }
  ASSERT_TRUE(subscribed);
  // A plain client on the CURVE endpoint is not the same as NULL by choice:
  // the NULL endpoint also refuses CURVE clients.
  hc::SessionClient curve_on_null(tcp(base_ + 4), curve_of(keys_, "nodes/session-2.pub", ""));
  EXPECT_FALSE(answered(curve_on_null));

  hc::Publisher pub(tcp(base_), curve_of(keys_, "broker.pub", "pub-a.key"));
  ASSERT_TRUE(std::holds_alternative<hc::PublishAck>(publish(pub, 7, "both", 1)));
  EXPECT_EQ(events(secured, 5s, 1), std::vector<std::string>{"both"});
  bool got = false;
  const auto end2 = std::chrono::steady_clock::now() + 5s;
  while (!got && std::chrono::steady_clock::now() < end2) {
    zmq::pollitem_t item{plain.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 50ms);
    while (recv_frames(plain, frames)) {
      wire::HeaderReader r(frames[0].data(), frames[0].size());
      if (r.ok() && r.type() == static_cast<std::uint32_t>(protocol::Type::kEvents)) {
        got = frames.size() == 2 && view_of(frames[1]) == "both";
      }
    }
  }
  EXPECT_TRUE(got);
}

}  // namespace
}  // namespace hearth::test
