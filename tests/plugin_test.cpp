// Plugins loaded by real nodes: each misbehaviour is contained, each
// documented effect happens, and every other client stays healthy.
#include <gtest/gtest.h>

#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

std::string plugin(const std::string& name) {
  return name + "=" + std::string(HEARTH_TEST_PLUGIN_DIR) + "/hearth_test_plugin_" + name + ".so";
}

template <class T>
std::optional<T> wait_for(hc::SessionClient& c, std::chrono::milliseconds timeout,
                          std::vector<hc::Message>* seen = nullptr) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  std::vector<hc::Message> msgs;
  while (std::chrono::steady_clock::now() < end) {
    msgs.clear();
    c.poll(msgs, std::chrono::milliseconds(20));
    for (auto& m : msgs) {
      if (seen) seen->push_back(m);
      if (auto* t = std::get_if<T>(&m)) return *t;
    }
  }
  return std::nullopt;
}

class Plugins : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra) {
    base_ = port_base() + 6;
    auto args = all_in_one_args(base_, {"--stats-interval-ms", "300"});
    args.insert(args.end(), extra.begin(), extra.end());
    node_ = std::make_unique<Process>("plugins", args);
    ASSERT_TRUE(node_->wait_for_log("with 1 guild node(s)", std::chrono::seconds(10)))
        << node_->log();
  }
  int base_ = 0;
  std::unique_ptr<Process> node_;
};

TEST_F(Plugins, EachPluginBehavesAsDocumentedAndTheNodeStaysHealthy) {
  start({"--plugin", plugin("gatekeeper"), "--plugin", plugin("throwing"), "--plugin",
         plugin("slow"), "--plugin", plugin("fail_init"), "--plugin", plugin("old_abi"),
         "--plugin-option", "gatekeeper.banned_user=666", "--plugin-failure-limit", "2",
         "--plugin-hook-budget-us", "1000"});
  const std::string log = node_->log();
  // Refused plugins are named with their reason; the node goes on.
  EXPECT_NE(log.find("plugin fail_init: not loaded"), std::string::npos) << log;
  EXPECT_NE(log.find("on_node_start failed"), std::string::npos) << log;
  EXPECT_NE(log.find("plugin old_abi: not loaded"), std::string::npos) << log;
  EXPECT_NE(log.find("built for plugin ABI version 0; this node supports version 1"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("plugin gatekeeper: loaded"), std::string::npos) << log;

  // on_identify rejects user 666 with the plugin's reason; user 1 is accepted.
  hc::SessionClient banned(tcp(base_ + 2));
  banned.identify(1, 666, "t", {5});
  auto err = wait_for<hc::ServerError>(banned, std::chrono::seconds(5));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 14u);  // REJECTED
  EXPECT_EQ(err->text, "user 666 is banned");

  SessionRecord r;
  r.user = 1;
  r.guilds = {5};
  Fleet fleet({tcp(base_ + 2)}, 1, {r});
  ASSERT_TRUE(fleet.pump_until([&] { return fleet.all_subscribed(); }, std::chrono::seconds(10)));

  // on_publish: rewrite, drop (the publisher is told why), pass.
  hc::Publisher pub(tcp(base_));
  pub.publish(5, 1, "secret", 1);
  pub.publish(5, 1, "drop:spam", 2);
  pub.publish(5, 1, "hello", 3);
  std::vector<hc::Message> replies;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (replies.size() < 3 && std::chrono::steady_clock::now() < end) {
    pub.poll(replies, std::chrono::milliseconds(50));
  }
  ASSERT_EQ(replies.size(), 3u);
  int acks = 0;
  for (auto& m : replies) {
    if (auto* e = std::get_if<hc::ServerError>(&m)) {
      EXPECT_EQ(e->ref, 2u);
      EXPECT_EQ(e->code, 14u);
      EXPECT_EQ(e->text, "dropped by gatekeeper: spam");
    } else {
      ++acks;
    }
  }
  EXPECT_EQ(acks, 2);
  ASSERT_TRUE(
      fleet.pump_until([&] { return fleet.events_received() >= 2; }, std::chrono::seconds(5)));
  fleet.pump(std::chrono::milliseconds(100));
  auto& events = fleet.sessions()[0].events;
  ASSERT_EQ(events.size(), 2u) << "the dropped event must not arrive";
  EXPECT_EQ(events[0].payload, "[redacted]");
  EXPECT_EQ(events[1].payload, "hello");
  EXPECT_EQ(events[1].seq, 3u);  // seq 1 is the SUBSCRIBED, 2 the first event

  // The throwing plugin failed on both events that reached it; at 2 it is disabled.
  ASSERT_TRUE(
      node_->wait_for_log("plugin throwing: disabled after 2 failures", std::chrono::seconds(5)))
      << node_->log();
  EXPECT_NE(node_->log().find("plugin throwing: threw: on_publish always throws"),
            std::string::npos);
  // The slow plugin's 5 ms hooks were counted against its 1 ms budget.
  EXPECT_NE(node_->log().find("plugin slow: on_publish took"), std::string::npos);
  ASSERT_TRUE(node_->wait_for_log("DISABLED", std::chrono::seconds(5)));  // in the stats line

  // A custom message kind reaches the plugin, which answers the session.
  hc::SessionClient asker(tcp(base_ + 2));
  asker.identify(9, 2, "t", {});
  auto ready = wait_for<hc::Ready>(asker, std::chrono::seconds(5));
  ASSERT_TRUE(ready);
  asker.plugin_message(ready->session_id, 7, "stats?");
  auto answer = wait_for<hc::PluginMessage>(asker, std::chrono::seconds(5));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->kind, 7u);
  EXPECT_EQ(answer->payload, "dropped=1 asked=stats?");
  asker.plugin_message(ready->session_id, 8, "nobody handles 8");
  auto unknown = wait_for<hc::ServerError>(asker, std::chrono::seconds(5));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, 3u);

  // After all of it, delivery still works and the process is alive.
  pub.publish(5, 1, "still here");
  ASSERT_TRUE(
      fleet.pump_until([&] { return fleet.events_received() >= 3; }, std::chrono::seconds(5)));
  EXPECT_EQ(events.back().payload, "still here");
  EXPECT_EQ(events.back().seq, 4u);
  EXPECT_EQ(stream_gap(fleet.sessions()[0]), "");
  EXPECT_TRUE(node_->alive());
  EXPECT_EQ(node_->stop(), 0) << node_->log();
  // Disabled, yet stopped: a plugin with threads can join them before dlclose.
  EXPECT_NE(node_->log().find("plugin throwing: on_node_stop: releasing"), std::string::npos);
}

TEST_F(Plugins, ServicesSlotsTimersMembersAndCloseHooksWork) {
  start({"--plugin", plugin("services"), "--plugin-required", "services"});
  hc::SessionClient c(tcp(base_ + 2));
  c.identify(1, 5, "t", {3});
  std::vector<hc::Message> seen;
  // The timer set in on_identify fires on the session's shard and reads the
  // session slot set there.
  auto msg = wait_for<hc::PluginMessage>(c, std::chrono::seconds(5), &seen);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->kind, 9u);
  EXPECT_EQ(msg->payload, "timer for user 5");
  // on_subscribe kept a guild slot and saw the member with its user.
  ASSERT_TRUE(
      node_->wait_for_log("guild 3 joins=1 members=1 first_user=5", std::chrono::seconds(5)))
      << node_->log();
  std::uint64_t session = 0;
  for (auto& m : seen) {
    if (auto* r = std::get_if<hc::Ready>(&m)) session = r->session_id;
  }
  ASSERT_NE(session, 0u);
  c.leave(session);
  ASSERT_TRUE(wait_for<hc::SessionClosed>(c, std::chrono::seconds(5)));
  // on_session_close and on_unsubscribe were counted (stats line).
  ASSERT_TRUE(node_->wait_for_log("closed=1", std::chrono::seconds(5))) << node_->log();
  ASSERT_TRUE(node_->wait_for_log("unsubscribed=1", std::chrono::seconds(5))) << node_->log();
  EXPECT_EQ(node_->stop(), 0);
  // on_session_free ran for the closed session before the node stopped.
  EXPECT_NE(node_->log().find("stopping; freed sessions=1"), std::string::npos) << node_->log();
}

TEST(PluginsRequired, AFailingRequiredPluginStopsTheNodeWithTheReason) {
  const int base = port_base() + 9;
  std::string out;
  EXPECT_EQ(
      run_hearth({"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1), "--listen",
                  tcp(base + 2), "--plugin", plugin("fail_init"), "--plugin-required", "fail_init"},
                 &out),
      1);
  EXPECT_NE(out.find("required plugin 'fail_init'"), std::string::npos) << out;
  EXPECT_NE(out.find("on_node_start failed"), std::string::npos) << out;
}

TEST(PluginsRequired, AMissingFileIsAClearError) {
  const int base = port_base() + 9;
  std::string out;
  EXPECT_EQ(run_hearth({"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1),
                        "--listen", tcp(base + 2), "--plugin", "ghost=/nonexistent/ghost.so",
                        "--plugin-required", "ghost"},
                       &out),
            1);
  EXPECT_NE(out.find("required plugin 'ghost' (/nonexistent/ghost.so): cannot load"),
            std::string::npos)
      << out;
  EXPECT_EQ(run_hearth({"node", "--plugin-required", "nobody"}, &out), 2);
  EXPECT_NE(out.find("which no --plugin NAME=PATH loads"), std::string::npos) << out;
  EXPECT_EQ(run_hearth({"node", "--plugin", "nameonly"}, &out), 2);
  EXPECT_NE(out.find("--plugin takes NAME=PATH"), std::string::npos) << out;
}

}  // namespace
}  // namespace hearth::test
