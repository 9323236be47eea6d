// The push plugin in a real node, pushing to a real HTTP server on 127.0.0.1
// (tests/push_sink.py): who gets pushes, devices, retries, the in-flight
// window at the provider, and a burst far over the buffer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <msgpack.hpp>
#include <set>
#include <thread>
#include <variant>

#include "cluster.hpp"
#include "push_harness.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;
using namespace std::chrono_literals;

constexpr std::uint64_t kRegister = 300, kRemove = 301, kResult = 302, kEnvelope = 310;

std::multiset<std::string> tokens(const std::vector<Push>& pushes) {
  std::multiset<std::string> out;
  for (const auto& p : pushes) out.insert(p.token);
  return out;
}

// A user's app: one session on one connection.
class App {
 public:
  App(const std::string& endpoint, std::uint64_t user, std::vector<std::uint64_t> guilds)
      : client_(endpoint), guilds_(guilds.size()) {
    client_.identify(1, user, "t", guilds);
  }
  bool ready() {
    return pump_until([&] { return subscribed_ >= guilds_; }, 10s);
  }
  template <class Pred>
  bool pump_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      pump(10ms);
    }
    return true;
  }
  void pump(std::chrono::milliseconds wait) {
    std::vector<hc::Message> msgs;
    client_.poll(msgs, wait);
    for (auto& m : msgs) {
      if (auto* r = std::get_if<hc::Ready>(&m)) session_ = r->session_id;
      if (auto* s = std::get_if<hc::Subscribed>(&m)) subscribed_ += s->code == 0;
      if (auto* e = std::get_if<hc::Event>(&m)) events.push_back(*e);
      if (std::get_if<hc::SessionClosed>(&m)) closed = true;
      if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == kResult) {
        auto h = msgpack::unpack(p->payload.data(), p->payload.size());
        results.push_back(h.get().as<std::tuple<std::uint64_t, bool, std::string>>());
      }
    }
  }
  void send_device(std::uint64_t kind, const std::string& token) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(token));
    client_.plugin_message(session_, kind, std::string_view(b.data(), b.size()));
  }
  // Registers tokens and waits for every answer; true if all were accepted.
  bool register_devices(const std::vector<std::string>& tokens) {
    const std::size_t before = results.size();
    for (const auto& t : tokens) send_device(kRegister, t);
    if (!pump_until([&] { return results.size() >= before + tokens.size(); }, 10s)) return false;
    for (std::size_t i = before; i < results.size(); ++i) {
      if (!std::get<1>(results[i])) return false;
    }
    return true;
  }
  // LEAVE, then a moment for the guild to hear the unsubscribe.
  void go_offline() {
    client_.leave(session_);
    pump_until([&] { return closed; }, 5s);
    std::this_thread::sleep_for(300ms);
  }
  void raw_plugin_message(std::uint64_t kind, std::string_view payload) {
    client_.plugin_message(session_, kind, payload);
  }

  std::vector<hc::Event> events;
  std::vector<std::tuple<std::uint64_t, bool, std::string>> results;
  bool closed = false;

 private:
  hc::SessionClient client_;
  std::size_t guilds_;
  std::size_t subscribed_ = 0;
  std::uint64_t session_ = 0;
};

std::string envelope(std::uint64_t kind, const std::string& payload,
                     const std::vector<std::uint64_t>& users, const std::string& title = "",
                     const std::string& body = "") {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(kind, payload, users, title, body));
  return std::string(b.data(), b.size());
}

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = port_base();
    dir_ = std::filesystem::temp_directory_path() /
           ("hearth-push-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // A certificate for 127.0.0.1, trusted by the node through push.ca_file.
    cert_ = (dir_ / "cert.pem").string();
    const std::string key = (dir_ / "key.pem").string();
    ASSERT_NO_THROW(make_certificate(cert_, key));
    sink_ = std::make_unique<Sink>(base_ + 10, cert_, key);
  }
  void TearDown() override {
    node_.reset();
    sink_.reset();
    std::filesystem::remove_all(dir_);
  }
  // HTTP/2 over TLS, as to FCM, unless `tls` is false.
  void start(const std::vector<std::string>& options = {}, bool tls = true) {
    auto args = all_in_one_args(
        base_, {"--stats-interval-ms", "100", "--plugin", std::string("push=") + HEARTH_PUSH_PLUGIN,
                "--plugin-required", "push"});
    std::vector<std::string> all = {"url=" + sink_->url(tls), "ca_file=" + cert_,
                                    "auth_token=secret-token",
                                    "db=" + (dir_ / "devices.db").string(), "retry_base_ms=50"};
    all.insert(all.end(), options.begin(), options.end());
    for (const auto& o : all) {
      args.push_back("--plugin-option");
      args.push_back("push." + o);
    }
    node_ = std::make_unique<Process>("push-node", args);
    ASSERT_TRUE(node_->wait_for_log("with 1 guild node(s)", 10s)) << node_->log();
  }
  std::string endpoint() const { return tcp(base_ + 2); }
  // `user`, a member of `guilds`, registers `tokens`, then goes offline.
  void offline_user(std::uint64_t user, std::vector<std::uint64_t> guilds,
                    const std::vector<std::string>& tokens) {
    App app(endpoint(), user, std::move(guilds));
    ASSERT_TRUE(app.ready());
    ASSERT_TRUE(app.register_devices(tokens));
    app.go_offline();
  }
  // "dev-0" .. "dev-<n-1>".
  static std::vector<std::string> numbered_devices(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back("dev-" + std::to_string(i));
    return out;
  }
  void publish(std::uint64_t guild, std::uint64_t kind, const std::string& payload) {
    if (!publisher_) publisher_ = std::make_unique<hc::Publisher>(tcp(base_));
    publisher_->publish(guild, kind, payload, ++acks_);
    std::vector<hc::Message> replies;
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end) {
      publisher_->poll(replies, 20ms);
      for (auto& m : replies) {
        if (auto* a = std::get_if<hc::PublishAck>(&m); a && a->ack_id == acks_) return;
        if (auto* e = std::get_if<hc::ServerError>(&m); e && e->ref == acks_) {
          last_error = e->text;
          return;
        }
      }
    }
    ADD_FAILURE() << "no answer to publish " << acks_;
  }
  // Waits until the plugin's stats satisfy `pred`.
  template <class Pred>
  std::map<std::string, std::uint64_t> wait_stats(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    auto s = push_stats(node_->log());
    while (!pred(s) && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(50ms);
      s = push_stats(node_->log());
    }
    return s;
  }

  int base_ = 0;
  std::filesystem::path dir_;
  std::string cert_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<Process> node_;
  std::unique_ptr<hc::Publisher> publisher_;
  std::uint64_t acks_ = 0;
  std::string last_error;
};

TEST_F(PushTest, OnlyMembersWithNoLiveSessionGetPushes) {
  start({"guild_kinds=10:7"});
  App active(endpoint(), 1, {10});  // live in guild 10: never pushed
  ASSERT_TRUE(active.ready());
  ASSERT_TRUE(active.register_devices({"tok-active"}));
  App elsewhere(endpoint(), 3, {20});  // live, but not in guild 10
  ASSERT_TRUE(elsewhere.ready());
  ASSERT_TRUE(elsewhere.register_devices({"tok-elsewhere"}));
  {
    App gone(endpoint(), 2, {10});
    ASSERT_TRUE(gone.ready());
    ASSERT_TRUE(gone.register_devices({"tok-gone"}));
    gone.go_offline();
    App phone(endpoint(), 4, {10, 20});  // two devices, both offline
    ASSERT_TRUE(phone.ready());
    ASSERT_TRUE(phone.register_devices({"tok-phone", "tok-tablet"}));
    phone.go_offline();
  }

  // A mention of users 1-5: 5 has no device.
  publish(10, kEnvelope, envelope(5, "hello", {1, 2, 3, 4, 5}, "Mentioned", "by Ann"));
  ASSERT_TRUE(active.pump_until([&] { return !active.events.empty(); }, 5s));
  EXPECT_EQ(active.events[0].kind, 5u) << "live sessions get the event itself";
  EXPECT_EQ(active.events[0].payload, "hello");
  ASSERT_TRUE(sink_->wait_count(4, 5s));
  std::this_thread::sleep_for(300ms);  // nothing more comes
  auto pushes = sink_->requests();
  EXPECT_EQ(tokens(pushes),
            (std::multiset<std::string>{"tok-elsewhere", "tok-gone", "tok-phone", "tok-tablet"}));
  for (const auto& p : pushes) {
    EXPECT_EQ(p.guild, 10u);
    EXPECT_EQ(p.kind, 5u);
    EXPECT_EQ(p.payload, "aGVsbG8=");  // base64("hello")
    EXPECT_EQ(p.title, "Mentioned");
    EXPECT_EQ(p.body, "by Ann");
    EXPECT_EQ(p.auth, "Bearer secret-token");
    EXPECT_EQ(p.status, 200);
  }

  // Kind 7 pushes in guild 10 to every member with a device and no live session.
  publish(10, 7, "news");
  ASSERT_TRUE(active.pump_until([&] { return active.events.size() >= 2; }, 5s));
  EXPECT_EQ(active.events[1].kind, 7u);
  ASSERT_TRUE(sink_->wait_count(7, 5s));
  std::this_thread::sleep_for(300ms);
  auto by_kind = sink_->requests(4);
  EXPECT_EQ(tokens(by_kind), (std::multiset<std::string>{"tok-gone", "tok-phone", "tok-tablet"}));
  // Kind 8 is not configured: no pushes.
  publish(10, 8, "chatter");
  ASSERT_TRUE(active.pump_until([&] { return active.events.size() >= 3; }, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sink_->stat("count"), 7);

  auto s = wait_stats([](auto& st) { return st["sent"] == 7; }, 5s);
  EXPECT_EQ(s["received"], 7u);
  EXPECT_EQ(s["sent"], 7u);
  EXPECT_EQ(s["no_device"], 1u);
  EXPECT_EQ(s["devices"], 5u);
  EXPECT_EQ(s["in_flight"], 0u);
  EXPECT_EQ(s["buffered"], 0u);
}

TEST_F(PushTest, DevicesSurviveARestartAndInvalidTokensAreRemoved) {
  const std::vector<std::string> options = {
      "headers=X-Gateway-Tenant: hearth-tests; X-Priority: high"};
  start(options);
  {
    App app(endpoint(), 5, {30});
    ASSERT_TRUE(app.ready());
    ASSERT_TRUE(app.register_devices({"keep-me", "stale", "remove-me"}));
    app.send_device(kRemove, "remove-me");
    ASSERT_TRUE(app.pump_until([&] { return app.results.size() == 4; }, 5s));
    EXPECT_EQ(app.results[3], std::make_tuple(kRemove, true, std::string("removed")));
  }
  ASSERT_EQ(node_->stop(), 0);
  start(options);  // the same database
  sink_->control(R"({"unregistered": ["stale"]})");
  publish(30, kEnvelope, envelope(1, "one", {5}));
  ASSERT_TRUE(sink_->wait_count(2, 5s));
  EXPECT_EQ(tokens(sink_->requests()), (std::multiset<std::string>{"keep-me", "stale"}));
  const std::string headers = sink_->requests()[0].headers;
  EXPECT_NE(headers.find("x-gateway-tenant: hearth-tests"), std::string::npos) << headers;
  EXPECT_NE(headers.find("x-priority: high"), std::string::npos) << headers;
  EXPECT_NE(headers.find("content-type: application/json"), std::string::npos) << headers;
  auto s = wait_stats([](auto& st) { return st["failed_invalid_token"] == 1; }, 5s);
  EXPECT_EQ(s["failed_invalid_token"], 1u);
  EXPECT_EQ(s["devices"], 1u) << "the provider said 'stale' is gone";
  EXPECT_EQ(s["retried"], 0u) << "an invalid token is not retried";

  publish(30, kEnvelope, envelope(1, "two", {5}));
  ASSERT_TRUE(sink_->wait_count(3, 5s));
  std::this_thread::sleep_for(300ms);
  auto later = sink_->requests(2);
  EXPECT_EQ(tokens(later), (std::multiset<std::string>{"keep-me"}));
}

TEST_F(PushTest, ServerErrorsAreRetriedWithBackoffThenCountedAsFailed) {
  start({"max_attempts=3"});
  ASSERT_NO_FATAL_FAILURE(offline_user(6, {40}, {"dev"}));
  sink_->control(R"({"fail_status": 503, "fail_count": 2})");
  publish(40, kEnvelope, envelope(1, "a", {6}));
  ASSERT_TRUE(sink_->wait_count(3, 5s));
  auto pushes = sink_->requests();
  ASSERT_EQ(pushes.size(), 3u);
  EXPECT_EQ(pushes[0].status, 503);
  EXPECT_EQ(pushes[1].status, 503);
  EXPECT_EQ(pushes[2].status, 200);
  auto s = wait_stats([](auto& st) { return st["sent"] == 1; }, 5s);
  EXPECT_EQ(s["retried"], 2u);

  // More failures than attempts: counted as failed, by reason.
  sink_->control(R"({"fail_status": 500, "fail_count": 3})");
  publish(40, kEnvelope, envelope(1, "b", {6}));
  s = wait_stats([](auto& st) { return st["failed_server_error"] == 1; }, 5s);
  EXPECT_EQ(s["failed_server_error"], 1u);
  EXPECT_EQ(s["sent"], 1u);
  EXPECT_EQ(s["retried"], 4u);
  EXPECT_EQ(sink_->stat("count"), 6);
}

TEST_F(PushTest, TheProvidersRetryAfterIsAFloorForTheBackoff) {
  start();  // retry_base_ms=50: without Retry-After the retry comes within 100 ms
  ASSERT_NO_FATAL_FAILURE(offline_user(6, {40}, {"dev"}));
  sink_->control(R"({"fail_status": 429, "fail_count": 1, "retry_after": 1})");
  publish(40, kEnvelope, envelope(1, "slow down", {6}));
  ASSERT_TRUE(sink_->wait_count(2, 5s));
  auto pushes = sink_->requests();
  EXPECT_GE(pushes[1].arrived - pushes[0].arrived, 0.95) << "Retry-After: 1 was honoured";
  EXPECT_EQ(pushes[0].status, 429);
  EXPECT_EQ(pushes[1].status, 200);
}

TEST_F(PushTest, TimeoutsAreRetriedAndCountedAndTheConnectionStaysUsable) {
  start({"timeout_ms=300", "max_attempts=2"});
  ASSERT_NO_FATAL_FAILURE(offline_user(6, {40}, {"dev"}));
  sink_->control(R"({"delay_ms": 1000})");  // slower than the 300 ms timeout
  publish(40, kEnvelope, envelope(1, "late", {6}));
  auto s = wait_stats([](auto& st) { return st["failed_timeout"] == 1; }, 10s);
  EXPECT_EQ(s["failed_timeout"], 1u);
  EXPECT_EQ(s["retried"], 1u) << "two attempts in all";
  EXPECT_EQ(s["sent"], 0u);
  EXPECT_EQ(s["devices"], 1u) << "a timeout says nothing about the token";

  sink_->control(R"({"delay_ms": 0})");
  publish(40, kEnvelope, envelope(1, "on time", {6}));
  s = wait_stats([](auto& st) { return st["sent"] == 1; }, 5s);
  EXPECT_EQ(s["sent"], 1u);
}

TEST_F(PushTest, TheAuthTokenFileIsReReadWhenItChanges) {
  const auto file = dir_ / "fcm-token";
  std::ofstream(file) << "first-token\n";
  start({"auth_token_file=" + file.string()});
  ASSERT_NO_FATAL_FAILURE(offline_user(6, {40}, {"dev"}));
  publish(40, kEnvelope, envelope(1, "a", {6}));
  ASSERT_TRUE(sink_->wait_count(1, 5s));
  EXPECT_EQ(sink_->requests()[0].auth, "Bearer first-token");
  // A sidecar refreshes the token: write a new file and move it into place.
  std::ofstream(dir_ / "fcm-token.new") << "second-token\n";
  std::filesystem::rename(dir_ / "fcm-token.new", file);
  std::this_thread::sleep_for(1200ms);  // checked at most once a second
  publish(40, kEnvelope, envelope(1, "b", {6}));
  ASSERT_TRUE(sink_->wait_count(2, 5s));
  EXPECT_EQ(sink_->requests()[1].auth, "Bearer second-token");
}

TEST_F(PushTest, InFlightNeverExceedsTheWindowPerHttp2Connection) {
  start({"pushers=2", "max_in_flight=8", "max_devices=1000"});
  ASSERT_NO_FATAL_FAILURE(offline_user(9, {50}, numbered_devices(300)));
  sink_->control(R"({"delay_ms": 50})");
  publish(50, kEnvelope, envelope(1, "x", {9}));
  ASSERT_TRUE(sink_->wait_count(300, 20s));
  auto st = sink_->stats();
  EXPECT_EQ(st["ok"], 300);
  EXPECT_EQ(st["protocol_h2"], 2) << "one HTTP/2 connection per pusher";
  EXPECT_EQ(st["connections"], 2);
  EXPECT_LE(st["max_in_flight"], 8) << "never more than the window on one connection";
  EXPECT_EQ(st["max_in_flight"], 8) << "and the window is used in full under load";
  EXPECT_LE(st["max_total_in_flight"], 16);
  EXPECT_EQ(tokens(sink_->requests()).size(), 300u);
}

TEST_F(PushTest, Http11UsesABoundedPoolOfKeepAliveConnections) {
  start({"http=1.1", "pushers=1", "connections=3", "max_devices=1000"}, false);
  ASSERT_NO_FATAL_FAILURE(offline_user(9, {50}, numbered_devices(120)));
  sink_->control(R"({"delay_ms": 20})");
  publish(50, kEnvelope, envelope(1, "x", {9}));
  ASSERT_TRUE(sink_->wait_count(120, 20s));
  auto st = sink_->stats();
  EXPECT_EQ(st["ok"], 120);
  EXPECT_EQ(st["protocol_http/1.1"], st["connections"]);
  EXPECT_LE(st["connections"], 3) << "connections are kept alive and reused";
  EXPECT_EQ(st["max_in_flight"], 1) << "HTTP/1.1: one request at a time per connection";
  EXPECT_LE(st["max_total_in_flight"], 3);
  EXPECT_GE(st["max_total_in_flight"], 2) << "the pool is used in parallel";
}

TEST_F(PushTest, AProviderWithoutHttp2GetsTheKeepAlivePool) {
  // The default (http=2) against a provider whose TLS offers only HTTP/1.1.
  const std::string key = (dir_ / "key.pem").string();
  sink_ = std::make_unique<Sink>(base_ + 12, cert_, key, "http/1.1");
  start({"pushers=1", "connections=3", "max_devices=1000"});
  ASSERT_NO_FATAL_FAILURE(offline_user(9, {50}, numbered_devices(60)));
  sink_->control(R"({"delay_ms": 20})");
  publish(50, kEnvelope, envelope(1, "x", {9}));
  ASSERT_TRUE(sink_->wait_count(60, 20s));
  auto st = sink_->stats();
  EXPECT_EQ(st["ok"], 60);
  EXPECT_EQ(st["protocol_h2"], 0);
  EXPECT_LE(st["connections"], 3);
  EXPECT_EQ(st["max_in_flight"], 1);
  EXPECT_GE(st["max_total_in_flight"], 2) << "the pool is used, not one connection";
  EXPECT_TRUE(node_->wait_for_log("does not speak HTTP/2", 5s)) << node_->log();
}

// Resident memory of a process, in KiB.
std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

TEST_F(PushTest, ABurstOf20xTheBufferIsShedCountedAndDeliveryRecovers) {
  // Buffer 500; one pusher of 10 in flight; the provider takes 20 ms a push:
  // at most ~500 pushes/s drain, far below the burst.
  start({"buffer=500", "pushers=1", "max_in_flight=10", "max_devices=100"});
  App watcher(endpoint(), 1, {60});  // a live member: must stay served
  ASSERT_TRUE(watcher.ready());
  ASSERT_NO_FATAL_FAILURE(offline_user(9, {60}, numbered_devices(100)));
  sink_->control(R"({"delay_ms": 20})");

  // Before: 100 pushes at the steady rate.
  auto t0 = std::chrono::steady_clock::now();
  publish(60, kEnvelope, envelope(1, "before", {9}));
  ASSERT_TRUE(sink_->wait_count(100, 20s));
  const auto before = std::chrono::steady_clock::now() - t0;

  // The burst: 100 publishes x 100 devices = 10,000 requests, 20x the buffer.
  const std::uint64_t rss_before = rss_kib(node_->pid());
  std::uint64_t rss_peak = rss_before;
  for (int i = 0; i < 100; ++i) {
    publish(60, kEnvelope, envelope(1, "burst-" + std::to_string(i), {9}));
    rss_peak = std::max(rss_peak, rss_kib(node_->pid()));
  }
  // The node stays responsive: the live member has every event promptly.
  ASSERT_TRUE(watcher.pump_until([&] { return watcher.events.size() >= 101; }, 5s));
  auto during = wait_stats([](auto& st) { return st["received"] >= 10100; }, 10s);
  EXPECT_LE(during["buffered"], 500u);
  // Drained: nothing buffered or in flight.
  auto s = wait_stats(
      [](auto& st) {
        return st["received"] == 10100 && st["buffered"] == 0 && st["in_flight"] == 0 &&
               st["latency_count"] == 0;
      },
      30s);
  ASSERT_EQ(s["received"], 10100u);
  ASSERT_EQ(s["buffered"], 0u);
  rss_peak = std::max(rss_peak, rss_kib(node_->pid()));
  EXPECT_LT(rss_peak - rss_before, 64u * 1024) << "memory stays bounded (KiB)";
  const std::uint64_t delivered = s["sent"];
  EXPECT_EQ(static_cast<std::int64_t>(delivered), sink_->stat("ok"));
  EXPECT_EQ(s["shed_buffer_full"], s["received"] - delivered) << "every lost push is counted";
  EXPECT_GT(s["shed_buffer_full"], 8000u);
  EXPECT_EQ(sink_->stat("max_in_flight"), 10);
  // keep=newest: the last pushes delivered are from the last publish.
  auto pushes = sink_->requests();
  ASSERT_FALSE(pushes.empty());
  EXPECT_EQ(pushes.back().payload, "YnVyc3QtOTk=");  // base64("burst-99")

  // After: the same 100 pushes at the same rate as before the burst.
  const auto count_before = sink_->stat("count");
  t0 = std::chrono::steady_clock::now();
  publish(60, kEnvelope, envelope(1, "after", {9}));
  ASSERT_TRUE(sink_->wait_count(count_before + 100, 20s));
  const auto after = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(after, before * 2 + 500ms) << "delivery resumes at full rate";
  EXPECT_EQ(push_stats(node_->log())["shed_buffer_full"], s["shed_buffer_full"]);
}

TEST_F(PushTest, BadRequestsAreAnsweredAndBreakNothing) {
  start();
  App app(endpoint(), 7, {70});
  ASSERT_TRUE(app.ready());
  app.raw_plugin_message(kRegister, "not msgpack");
  app.send_device(kRegister, "has space");
  app.send_device(kRemove, "never-registered");
  ASSERT_TRUE(app.pump_until([&] { return app.results.size() == 3; }, 5s));
  EXPECT_FALSE(std::get<1>(app.results[0]));
  EXPECT_EQ(std::get<2>(app.results[0]), "the payload must be [token]");
  EXPECT_FALSE(std::get<1>(app.results[1]));
  EXPECT_NE(std::get<2>(app.results[1]).find("printable ASCII"), std::string::npos);
  EXPECT_FALSE(std::get<1>(app.results[2]));

  publish(70, kEnvelope, "garbage");
  EXPECT_NE(last_error.find("PUSH_EVENT payload must be"), std::string::npos) << last_error;
  // Headers that claim billions of elements or bytes, and deep nesting:
  // refused before anything is allocated, from a client and from a publisher.
  for (const std::string& crafted :
       {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdf\xff\xff\xff\xff", 5),
        std::string("\xc6\xff\xff\xff\xff", 5), std::string("\xdb\xff\xff\xff\xff", 5),
        std::string(100000, '\x91')}) {
    app.raw_plugin_message(kRegister, crafted);
    last_error.clear();
    publish(70, kEnvelope, crafted);
    EXPECT_NE(last_error.find("PUSH_EVENT payload must be"), std::string::npos) << last_error;
  }
  ASSERT_TRUE(app.pump_until([&] { return app.results.size() == 8; }, 5s));
  for (std::size_t i = 3; i < 8; ++i) EXPECT_FALSE(std::get<1>(app.results[i]));
  last_error.clear();
  publish(70, kEnvelope, envelope(kEnvelope, "x", {7}));
  EXPECT_NE(last_error.find("PUSH_EVENT kind"), std::string::npos) << last_error;

  // Still fine for everyone: a good registration and a push.
  ASSERT_TRUE(app.register_devices({"fine"}));
  app.go_offline();
  publish(70, kEnvelope, envelope(1, "ok", {7}));
  ASSERT_TRUE(sink_->wait_count(1, 5s));
  EXPECT_EQ(node_->log().find("plugin push: disabled"), std::string::npos);
}

TEST(PushConfig, AMissingUrlStopsTheNodeWithTheOptionNamed) {
  std::string out;
  const int base = port_base();
  const int code = run_hearth(
      {"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1), "--listen", tcp(base + 2),
       "--plugin", std::string("push=") + HEARTH_PUSH_PLUGIN, "--plugin-required", "push"},
      &out);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("push.url"), std::string::npos) << out;
}

}  // namespace
}  // namespace hearth::test

namespace hearth::test {
namespace {

// Separate processes: the device is registered through the session node; the
// guild node decides the push, having picked the device up from the shared
// database file.
TEST_F(PushTest, ADeviceRegisteredOnASessionNodeIsPushedByTheGuildNode) {
  const std::string db = (dir_ / "shared.db").string();
  Process broker("push-broker",
                 {"broker", "--frontend", tcp(base_), "--backend", tcp(base_ + 1), "--insecure"});
  auto node_args = [&](const std::string& name, const std::string& roles, int listen) {
    return std::vector<std::string>{"node",
                                    "--name",
                                    name,
                                    "--roles",
                                    roles,
                                    "--broker",
                                    tcp(base_ + 1),
                                    "--listen",
                                    tcp(listen),
                                    "--shards",
                                    "2",
                                    "--stats-interval-ms",
                                    "100",
                                    "--plugin",
                                    std::string("push=") + HEARTH_PUSH_PLUGIN,
                                    "--plugin-required",
                                    "push",
                                    "--plugin-option",
                                    "push.url=" + sink_->url(true),
                                    "--plugin-option",
                                    "push.ca_file=" + cert_,
                                    "--plugin-option",
                                    "push.db=" + db,
                                    "--insecure"};
  };
  Process guilds("push-guild-node", node_args("guild-1", "guild", base_ + 3));
  Process sessions("push-session-node", node_args("session-1", "session", base_ + 4));
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 2 node(s)", 10s)) << broker.log();

  App live(tcp(base_ + 4), 1, {80});
  ASSERT_TRUE(live.ready());
  {
    App phone(tcp(base_ + 4), 2, {80});
    ASSERT_TRUE(phone.ready());
    ASSERT_TRUE(phone.register_devices({"cross-node-token"}));
    phone.go_offline();
  }
  // The guild node reloads within 250 ms of the session node's commit.
  ASSERT_TRUE(guilds.wait_for_log("devices=1", 5s)) << guilds.log();
  publish(80, kEnvelope, envelope(3, "ping", {1, 2}));
  ASSERT_TRUE(live.pump_until([&] { return !live.events.empty(); }, 5s));
  ASSERT_TRUE(sink_->wait_count(1, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(tokens(sink_->requests()), (std::multiset<std::string>{"cross-node-token"}));
  EXPECT_EQ(push_stats(guilds.log())["sent"], 1u);
  EXPECT_EQ(push_stats(sessions.log())["received"], 0u) << "session nodes decide no pushes";
}

}  // namespace
}  // namespace hearth::test

namespace hearth::test {
namespace {

TEST_F(PushTest, ThePythonMentionExampleReachesTheProvider) {
  start({"http=1.1"}, false);
  std::string out;
  ASSERT_EQ(run_hearth({std::string(HEARTH_SOURCE_DIR) + "/examples/python/push_mention.py",
                        "--sessions", endpoint(), "--publishers", tcp(base_), "--sink",
                        "http://127.0.0.1:" + std::to_string(base_ + 10), "--user", "77"},
                       &out, "/usr/bin/python3"),
            0)
      << out;
  EXPECT_NE(out.find("register 'demo-device-token': registered"), std::string::npos) << out;
  EXPECT_NE(out.find("provider got: token demo-device-token, user 77, title 'Mentioned'"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace hearth::test

namespace hearth::test {
namespace {

// The README's main job, shortened: the demo's offline users get their pushes.
TEST_F(PushTest, TheDemoMentionsOfflineUsersAndTheProviderGetsThePushes) {
  std::string out;
  const int code = run_hearth({"demo",
                               "--frontend",
                               tcp(base_),
                               "--backend",
                               tcp(base_ + 1),
                               "--listen",
                               tcp(base_ + 2),
                               "--shards",
                               "2",
                               "--demo-connections",
                               "4",
                               "--demo-sessions-per-connection",
                               "5",
                               "--demo-rate",
                               "200",
                               "--demo-duration-s",
                               "3",
                               "--demo-offline-users",
                               "20",
                               "--demo-mention-rate",
                               "20",
                               "--plugin",
                               std::string("push=") + HEARTH_PUSH_PLUGIN,
                               "--plugin-option",
                               "push.url=" + sink_->url(false),
                               "--plugin-option",
                               "push.http=1.1",
                               "--plugin-option",
                               "push.db=" + (dir_ / "demo.db").string()},
                              &out);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("demo: 20 offline users with a device"), std::string::npos) << out;
  EXPECT_NE(out.find("sequence gaps 0"), std::string::npos) << out;
  const auto pushes = sink_->requests();
  EXPECT_GE(pushes.size(), 20u) << out;
  for (const auto& p : pushes) {
    EXPECT_GE(p.user, 1000000u);
    EXPECT_EQ(p.title, "You were mentioned");
    EXPECT_EQ(p.status, 200);
  }
}

}  // namespace
}  // namespace hearth::test

namespace hearth::test {
namespace {

// The provider goes away and comes back: pushes during the outage fail after
// their retries (counted), the node is unaffected, and delivery resumes.
TEST_F(PushTest, AProviderOutageIsCountedAndDeliveryResumesAfterIt) {
  start({"max_attempts=2", "retry_base_ms=50", "timeout_ms=1000"});
  ASSERT_NO_FATAL_FAILURE(offline_user(6, {40}, {"dev"}));
  publish(40, kEnvelope, envelope(1, "before", {6}));
  ASSERT_TRUE(sink_->wait_count(1, 5s));
  sink_.reset();  // the provider is down: connections are refused
  for (int i = 0; i < 3; ++i) publish(40, kEnvelope, envelope(1, "during", {6}));
  auto s = wait_stats([](auto& st) { return st["failed_connection"] == 3; }, 10s);
  EXPECT_EQ(s["failed_connection"], 3u);
  EXPECT_EQ(s["devices"], 1u) << "an outage says nothing about the token";
  App live(endpoint(), 1, {40});  // the node serves sessions throughout
  ASSERT_TRUE(live.ready());

  const std::string key = (dir_ / "key.pem").string();
  sink_ = std::make_unique<Sink>(base_ + 10, cert_, key);  // back, same address
  publish(40, kEnvelope, envelope(1, "after", {6}));
  ASSERT_TRUE(sink_->wait_count(1, 10s));
  EXPECT_EQ(sink_->requests()[0].payload, "YWZ0ZXI=");  // base64("after")
  s = wait_stats([](auto& st) { return st["sent"] == 2; }, 5s);
  EXPECT_EQ(s["sent"], 2u);
}

}  // namespace
}  // namespace hearth::test
