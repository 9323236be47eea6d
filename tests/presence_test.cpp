// The presence plugin in a real node: exactly which PRESENCE_UPDATEs other
// sessions receive, and in which order, for the cases users meet.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <thread>
#include <variant>
#include <zmq.hpp>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

struct Update {
  std::uint64_t user;
  unsigned status;
  std::string activity;
  bool operator==(const Update&) const = default;
};

// The last of `v`, or an empty Update (user 0) when there is none.
Update last(const std::vector<Update>& v) {
  return v.empty() ? Update{} : v.back();
}

std::ostream& operator<<(std::ostream& o, const Update& u) {
  return o << "{user " << u.user << " status " << u.status << " '" << u.activity << "'}";
}

enum : unsigned { kOffline = 0, kOnline = 1, kIdle = 2, kDnd = 3, kInvisible = 4 };

std::string set_payload(unsigned status, const std::string& activity) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(status, activity));
  return std::string(b.data(), b.size());
}

// One connection with one session, recording presence updates and snapshots.
class Member {
 public:
  Member(const std::string& endpoint, std::uint64_t user, std::vector<std::uint64_t> guilds,
         std::optional<hc::InitialPresence> presence = std::nullopt)
      : client_(endpoint), guilds_(guilds.size()) {
    client_.identify(1, user, "t", guilds, presence);
  }
  // Pumps until subscribed to all its guilds.
  bool ready(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return pump_until([&] { return subscribed_ >= guilds_; }, timeout);
  }
  template <class Pred>
  bool pump_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      pump(std::chrono::milliseconds(10));
    }
    return true;
  }
  void pump(std::chrono::milliseconds wait) {
    std::vector<hc::Message> msgs;
    client_.poll(msgs, wait);
    for (auto& m : msgs) {
      if (auto* r = std::get_if<hc::Ready>(&m)) {
        session_ = r->session_id;
        token_ = r->resume_token;
      }
      if (auto pos = hc::stream_position(m)) last_seq_ = pos->seq;
      if (std::holds_alternative<hc::Resumed>(m)) ++resumed;
      if (auto* err = std::get_if<hc::ServerError>(&m)) errors.push_back(err->code);
      if (auto* s = std::get_if<hc::Subscribed>(&m)) {
        subscribed_ += s->code == 0;
        arrivals.push_back("SUBSCRIBED " + std::to_string(s->guild_id));
      }
      if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == 207) {
        auto h = msgpack::unpack(p->payload.data(), p->payload.size());
        auto t = h.get().as<std::tuple<std::uint64_t, unsigned, std::string>>();
        self.push_back({std::get<0>(t), std::get<1>(t), std::get<2>(t)});
        arrivals.push_back("207 " + std::to_string(std::get<0>(t)));
      }
      if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == 206) ++refusals;
      if (auto* e = std::get_if<hc::Event>(&m); e && e->kind == 201) {
        auto h = msgpack::unpack(e->payload.data(), e->payload.size());
        auto t = h.get().as<std::tuple<std::uint64_t, unsigned, std::string, std::uint64_t>>();
        // A session also receives its own user's updates (the guild fans out
        // to every member); as docs/presence.md says, clients skip those.
        if (std::get<1>(t) == kOffline) {
          view.erase(std::get<0>(t));
        } else {
          view[std::get<0>(t)] = {std::get<1>(t), std::get<2>(t)};
        }
        updates.push_back({std::get<0>(t), std::get<1>(t), std::get<2>(t)});
        in_guild[e->guild_id].push_back(updates.back());
      }
      if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == 202) {
        auto h = msgpack::unpack(p->payload.data(), p->payload.size());
        snapshots.push_back(h.get().as<Snapshot>());
        arrivals.push_back("202 " + std::to_string(std::get<0>(snapshots.back())));
        for (const auto& [u, status, activity] : std::get<4>(snapshots.back())) {
          view[u] = {status, activity};
        }
      }
    }
  }
  // Waits for `n` updates in all; then checks nothing more comes for `quiet`.
  std::vector<Update> expect(std::size_t n, std::chrono::milliseconds quiet) {
    pump_until([&] { return updates.size() >= n; }, std::chrono::seconds(5));
    const auto end = std::chrono::steady_clock::now() + quiet;
    while (std::chrono::steady_clock::now() < end) pump(std::chrono::milliseconds(10));
    return updates;
  }
  void set(unsigned status, const std::string& activity = "") {
    client_.plugin_message(session_, 200, set_payload(status, activity));
  }
  void leave() { client_.leave(session_); }
  // A live SUBSCRIBE (protocol v2); ready() then waits for these guilds too.
  void subscribe(const std::vector<std::uint64_t>& guilds) {
    client_.subscribe(9, session_, guilds);
    guilds_ += guilds.size();
  }
  // Drops the connection and continues the session on a new one (RESUME).
  bool reconnect_and_resume(std::chrono::milliseconds detached = std::chrono::milliseconds(0)) {
    const int before = resumed;
    client_.reconnect();
    std::this_thread::sleep_for(detached);
    client_.resume(2, session_, token_, last_seq_);
    return pump_until([&] { return resumed > before; }, std::chrono::seconds(5));
  }
  void send_raw(const std::vector<std::string>& frames) { client_.send_raw(frames); }
  void send(std::uint64_t kind, const std::string& payload) {
    client_.plugin_message(session_, kind, payload);
  }
  std::uint64_t session() const { return session_; }
  // The user's own status as the guilds told it (207): {guild, status, activity}.
  std::vector<Update> self;
  Update last_self() const { return self.empty() ? Update{} : self.back(); }
  std::vector<std::uint32_t> errors;
  int refusals = 0;
  int resumed = 0;
  void heartbeat() { client_.heartbeat(); }

  std::vector<Update> updates;
  std::map<std::uint64_t, std::vector<Update>> in_guild;  // the updates, by guild
  // SUBSCRIBED, 202 and 207 in arrival order, each with its guild: "202 5".
  std::vector<std::string> arrivals;
  // Who this session believes is online: from snapshots and updates.
  std::map<std::uint64_t, std::pair<unsigned, std::string>> view;
  // [guild, online, after, more, [[user, status, activity]...], version]
  using Snapshot =
      std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, bool,
                 std::vector<std::tuple<std::uint64_t, unsigned, std::string>>, std::uint64_t>;
  std::vector<Snapshot> snapshots;
  void ask_page(std::uint64_t guild, std::uint64_t page) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(guild, page));
    client_.plugin_message(session_, 204, std::string_view(b.data(), b.size()));
  }

 private:
  hc::SessionClient client_;
  std::size_t guilds_;
  std::size_t subscribed_ = 0;
  std::uint64_t session_ = 0;
  std::string token_;
  std::uint64_t last_seq_ = 0;
};

class PresenceTest : public ::testing::Test {
 protected:
  // Clients here do not heartbeat: a long timeout keeps slow (sanitized) runs honest.
  void SetUp() override { start("10000", "30000"); }
  void start(const std::string& heartbeat_ms, const std::string& timeout_ms,
             const std::vector<std::string>& extra = {}) {
    base_ = port_base() + 13;
    auto args = all_in_one_args(
        base_, {"--client-heartbeat-ms", heartbeat_ms, "--client-timeout-ms", timeout_ms,
                "--plugin", std::string("presence=") + HEARTH_PRESENCE_PLUGIN, "--plugin-required",
                "presence", "--plugin-option", "presence.grace_ms=400", "--plugin-option",
                "presence.min_interval_ms=50"});
    args.insert(args.end(), extra.begin(), extra.end());
    node_ = std::make_unique<Process>("presence", args);
    ASSERT_TRUE(node_->wait_for_log("with 1 guild node(s)", std::chrono::seconds(10)))
        << node_->log();
  }
  std::string endpoint() const { return tcp(base_ + 2); }
  static constexpr auto kQuiet = std::chrono::milliseconds(300);
  int base_ = 0;
  std::unique_ptr<Process> node_;
};

TEST_F(PresenceTest, MultiDeviceIdleInvisibleAndTheMostRecentlySetStatus) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member phone(endpoint(), 7, {1});
  ASSERT_TRUE(phone.ready());
  EXPECT_EQ(observer.expect(1, kQuiet), (std::vector<Update>{{7, kOnline, ""}}));

  Member desktop(endpoint(), 7, {1});  // a second device: nothing visible changes
  ASSERT_TRUE(desktop.ready());
  EXPECT_EQ(observer.expect(1, kQuiet).size(), 1u);

  // Two devices set statuses on two connections; each waits for the update
  // before the next, so "most recently set" has one meaning.
  auto now = std::chrono::milliseconds(0);
  desktop.set(kIdle);
  ASSERT_EQ(observer.expect(2, now).size(), 2u);
  phone.set(kDnd, "in a meeting");  // the most recent set wins
  ASSERT_EQ(observer.expect(3, now).size(), 3u);
  desktop.set(kInvisible);  // invisible shows as offline
  ASSERT_EQ(observer.expect(4, now).size(), 4u);
  // The same device, so these two keep their order: the repeat changes
  // nothing visible (no update), the next set does.
  desktop.set(kInvisible);
  desktop.set(kOnline, "coding");
  EXPECT_EQ(observer.expect(5, kQuiet), (std::vector<Update>{{7, kOnline, ""},
                                                             {7, kIdle, ""},
                                                             {7, kDnd, "in a meeting"},
                                                             {7, kOffline, ""},
                                                             {7, kOnline, "coding"}}));
  // Only *other* sessions are told: the user's own devices get none of these.
  EXPECT_TRUE(phone.expect(0, std::chrono::milliseconds(0)).empty());
  EXPECT_TRUE(desktop.expect(0, std::chrono::milliseconds(0)).empty());
  ASSERT_TRUE(node_->alive());
}

TEST_F(PresenceTest, GracePeriodHidesQuickReconnectsAndOfflineFollowsIt) {
  Member observer(endpoint(), 100, {1, 2});
  ASSERT_TRUE(observer.ready());
  {
    Member user(endpoint(), 8, {1, 2});
    ASSERT_TRUE(user.ready());
    // One update per shared guild.
    EXPECT_EQ(observer.expect(2, kQuiet),
              (std::vector<Update>{{8, kOnline, ""}, {8, kOnline, ""}}));
    user.leave();
    user.pump(std::chrono::milliseconds(50));
  }
  Member again(endpoint(), 8, {1, 2});  // back within the 400 ms grace period
  ASSERT_TRUE(again.ready());
  EXPECT_EQ(observer.expect(2, std::chrono::milliseconds(700)).size(), 2u) << "no flap";

  again.leave();
  again.pump(std::chrono::milliseconds(50));
  EXPECT_EQ(observer.expect(4, kQuiet),
            (std::vector<Update>{
                {8, kOnline, ""}, {8, kOnline, ""}, {8, kOffline, ""}, {8, kOffline, ""}}));
}

TEST_F(PresenceTest, MissedHeartbeatsTakeAUserOfflineAfterTheGracePeriod) {
  node_.reset();
  start("300", "900", {"--resume-grace-ms", "500"});
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member silent(endpoint(), 9, {1});
  ASSERT_TRUE(silent.ready());
  ASSERT_EQ(observer.expect(1, std::chrono::milliseconds(0)).size(), 1u);
  // The observer keeps heartbeating; `silent` says nothing: after the 900 ms
  // client timeout its session is detached (it may still be resumed), after
  // the 500 ms resume grace it is closed, and after the 400 ms presence grace
  // period the user is offline.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (observer.updates.size() < 2 && std::chrono::steady_clock::now() < end) {
    observer.heartbeat();
    observer.pump(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(observer.updates, (std::vector<Update>{{9, kOnline, ""}, {9, kOffline, ""}}));
}

TEST_F(PresenceTest, NewSubscriberGetsTheGuildSnapshot) {
  // `a` is subscribed before `b` arrives: otherwise `b` may come online
  // first, and `a` learns of it from its snapshot instead of an update.
  Member a(endpoint(), 11, {3});
  ASSERT_TRUE(a.ready());
  Member b(endpoint(), 12, {3});
  ASSERT_TRUE(b.ready());
  // Wait for "12 online" first: a set that reaches the guild before the
  // subscription's own decision is folded into one update (12 dnd).
  ASSERT_EQ(a.expect(1, std::chrono::milliseconds(0)).size(), 1u);
  b.set(kDnd, "busy");
  ASSERT_EQ(a.expect(2, kQuiet).size(), 2u);  // 12 online, then 12 dnd
  Member late(endpoint(), 13, {3});
  ASSERT_TRUE(late.ready());
  late.pump_until([&] { return !late.snapshots.empty(); }, std::chrono::seconds(5));
  ASSERT_EQ(late.snapshots.size(), 1u);
  const auto& [guild, online, page_index, more, page, version] = late.snapshots[0];
  EXPECT_EQ(guild, 3u);
  EXPECT_EQ(online, 2u);
  EXPECT_EQ(page_index, 0u);
  EXPECT_FALSE(more);
  std::map<std::uint64_t, std::pair<unsigned, std::string>> seen;
  for (const auto& [user, status, activity] : page) seen[user] = {status, activity};
  EXPECT_EQ(seen[11], std::make_pair(unsigned{kOnline}, std::string()));
  EXPECT_EQ(seen[12], std::make_pair(unsigned{kDnd}, std::string("busy")));
}

TEST_F(PresenceTest, PublishersCannotForgePresence) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  hc::Publisher pub(tcp(base_));
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(std::uint64_t{5}, 1u, std::string("forged")));
  pub.publish(1, 201, std::string_view(b.data(), b.size()), 1);
  std::vector<hc::Message> replies;
  pub.poll(replies, std::chrono::seconds(5));
  ASSERT_EQ(replies.size(), 1u);
  auto* err = std::get_if<hc::ServerError>(&replies[0]);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->code, 14u);
  // Also without an ack: protocol v2 reports every publish error. The
  // internal kinds (203, 205, 208, 209) are the plugin's own too, and so are
  // the directory's guild ids (2^64 - 2^32 on), whatever the kind.
  for (std::uint64_t kind : {201u, 203u, 205u, 208u, 209u}) pub.publish(1, kind, "x", 0);
  pub.publish(0xFFFFFFFF00000007ull, 1, "x", 0);
  pub.publish(0xFFFFFFFF00000007ull, 208, "x", 0);
  std::size_t refused = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (refused < 7 && std::chrono::steady_clock::now() < end) {
    replies.clear();
    pub.poll(replies, std::chrono::milliseconds(50));
    for (auto& m : replies) {
      auto* e = std::get_if<hc::ServerError>(&m);
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(e->code, 14u);
      EXPECT_EQ(e->ref, 0u);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 7u);
  EXPECT_TRUE(observer.expect(0, kQuiet).empty());
}

TEST_F(PresenceTest, MalformedRequestsAreAnsweredAndCannotDisableThePlugin) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  hc::SessionClient bad(endpoint());
  bad.identify(1, 66, "t", {1});
  std::uint64_t session = 0;
  std::vector<hc::Message> msgs;
  for (int i = 0; i < 100 && session == 0; ++i) {
    msgs.clear();
    bad.poll(msgs, std::chrono::milliseconds(20));
    for (auto& m : msgs) {
      if (auto* r = std::get_if<hc::Ready>(&m)) session = r->session_id;
    }
  }
  ASSERT_NE(session, 0u);
  // More garbage than the plugin failure limit (10) would allow, were it counted.
  int errors = 0;
  for (int i = 0; i < 15; ++i) bad.plugin_message(session, 200, "not msgpack at all");
  bad.plugin_message(session, 200, set_payload(9, ""));  // no such status
  // Headers that claim billions of elements or bytes, and deep nesting: refused
  // before anything is allocated.
  for (const std::string& crafted :
       {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdf\xff\xff\xff\xff", 5),
        std::string("\xc6\xff\xff\xff\xff", 5), std::string("\xdb\xff\xff\xff\xff", 5),
        std::string(100000, '\x91')}) {
    bad.plugin_message(session, 200, crafted);
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (errors < 21 && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    bad.poll(msgs, std::chrono::milliseconds(20));
    for (auto& m : msgs) {
      if (auto* p = std::get_if<hc::PluginMessage>(&m); p && p->kind == 206) ++errors;
    }
  }
  EXPECT_EQ(errors, 21);
  // Presence still works for everyone.
  Member user(endpoint(), 7, {1});
  ASSERT_TRUE(user.ready());
  ASSERT_EQ(observer.expect(2, std::chrono::milliseconds(0)).size(), 2u);  // as above
  user.set(kDnd, "fine");
  const auto updates = observer.expect(3, kQuiet);  // 66 online, 7 online, 7 dnd
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_EQ(updates.back(), (Update{7, kDnd, "fine"}));
  EXPECT_EQ(node_->log().find("plugin presence: disabled"), std::string::npos);
}

TEST_F(PresenceTest, LargeGuildSnapshotsArePagedOnRequest) {
  node_.reset();
  start("10000", "30000",
        {"--plugin-option", "presence.snapshot_full_limit=2", "--plugin-option",
         "presence.snapshot_page=2"});
  std::vector<std::unique_ptr<Member>> members;
  for (std::uint64_t user = 21; user <= 25; ++user) {
    members.push_back(std::make_unique<Member>(endpoint(), user, std::vector<std::uint64_t>{4}));
    ASSERT_TRUE(members.back()->ready());
  }
  // The first saw the four others come online: everything has settled.
  ASSERT_EQ(members.front()->expect(4, kQuiet).size(), 4u);
  Member watcher(endpoint(), 30, {4});
  ASSERT_TRUE(watcher.ready());
  ASSERT_TRUE(
      watcher.pump_until([&] { return !watcher.snapshots.empty(); }, std::chrono::seconds(5)));
  std::vector<std::uint64_t> users;
  std::uint64_t after = 0;
  for (std::uint64_t page = 0;; ++page) {
    if (page > 0) {
      watcher.ask_page(4, after);
      ASSERT_TRUE(watcher.pump_until([&] { return watcher.snapshots.size() > page; },
                                     std::chrono::seconds(5)));
    }
    const auto& [guild, online, cursor, more, entries, version] = watcher.snapshots[page];
    EXPECT_EQ(guild, 4u);
    // The count of the whole guild now; from page 1 on the watcher itself is online too.
    EXPECT_EQ(online, page == 0 ? 5u : 6u);
    EXPECT_EQ(cursor, after);
    EXPECT_EQ(version, page == 0 ? 5u : 6u);
    EXPECT_LE(entries.size(), 2u);
    for (const auto& e : entries) users.push_back(std::get<0>(e));
    if (!entries.empty()) after = std::get<0>(entries.back());
    if (!more) break;
    ASSERT_LT(page, 5u);
  }
  // The requester's own user is never listed: its own status comes as 207.
  EXPECT_EQ(users, (std::vector<std::uint64_t>{21, 22, 23, 24, 25}));
}

TEST_F(PresenceTest, BackendsFollowChangesOnTheStream) {
  node_.reset();
  const std::string stream = tcp(port_base() + 17);
  start("10000", "30000", {"--plugin-option", "presence.stream=" + stream});
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "presence");
  sub.set(zmq::sockopt::rcvtimeo, 2000);
  sub.connect(stream);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the SUB joins first
  Member user(endpoint(), 40, {6});
  ASSERT_TRUE(user.ready());
  user.pump(kQuiet);
  user.set(kIdle, "away");
  user.pump(kQuiet);
  using Change =
      std::tuple<std::uint64_t, std::uint64_t, unsigned, unsigned, std::string, std::uint64_t>;
  std::vector<Change> changes;
  while (changes.size() < 2) {
    zmq::message_t topic, body;
    if (!sub.recv(topic)) break;
    ASSERT_TRUE(sub.recv(body));
    EXPECT_EQ(topic.to_string(), "presence");
    auto h = msgpack::unpack(static_cast<const char*>(body.data()), body.size());
    changes.push_back(h.get().as<Change>());
  }
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(std::get<0>(changes[0]), 40u);
  EXPECT_EQ(std::get<1>(changes[0]), 6u);
  EXPECT_EQ(std::get<2>(changes[0]), unsigned{kOffline});
  EXPECT_EQ(std::get<3>(changes[0]), unsigned{kOnline});
  EXPECT_EQ(std::get<2>(changes[1]), unsigned{kOnline});
  EXPECT_EQ(std::get<3>(changes[1]), unsigned{kIdle});
  EXPECT_EQ(std::get<4>(changes[1]), "away");
  EXPECT_LE(std::get<5>(changes[0]), std::get<5>(changes[1]));
}

// ---- Presence v2 (issue 13) ----

hc::InitialPresence presence_of(unsigned status, const std::string& activity = "") {
  return hc::InitialPresence{status, activity};
}

TEST_F(PresenceTest, IdentifyCarriesTheInitialStatus) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member busy(endpoint(), 7, {1}, presence_of(kDnd, "in a meeting"));
  ASSERT_TRUE(busy.ready());
  Member hidden(endpoint(), 8, {1}, presence_of(kInvisible));
  ASSERT_TRUE(hidden.ready());
  Member plain(endpoint(), 9, {1});
  ASSERT_TRUE(plain.ready());
  // One update each for the visible ones, with their status at once; nothing for the invisible.
  auto updates = observer.expect(2, kQuiet);
  std::sort(updates.begin(), updates.end(),
            [](const Update& a, const Update& b) { return a.user < b.user; });
  EXPECT_EQ(updates, (std::vector<Update>{{7, kDnd, "in a meeting"}, {9, kOnline, ""}}));
  // Each session learns its own status (invisible included) as 207.
  ASSERT_TRUE(busy.pump_until([&] { return !busy.self.empty(); }, std::chrono::seconds(5)));
  EXPECT_EQ(busy.self.front(), (Update{1, kDnd, "in a meeting"}));
  ASSERT_TRUE(hidden.pump_until([&] { return !hidden.self.empty(); }, std::chrono::seconds(5)));
  EXPECT_EQ(hidden.self.front(), (Update{1, kInvisible, ""}));
}

// A raw IDENTIFY with `presence` as given (already MessagePack).
std::string identify_header(std::uint64_t request, std::uint64_t user,
                            const std::string& presence) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(7);
  pk.pack(2u).pack(1u).pack(request).pack(user).pack(std::string("t"));
  pk.pack(std::vector<std::uint64_t>{1});
  std::string out(b.data(), b.size());
  return out + presence;
}

std::string packed(const auto& value) {
  msgpack::sbuffer b;
  msgpack::pack(b, value);
  return std::string(b.data(), b.size());
}

// Malformed [status, activity] values, each as MessagePack.
std::vector<std::pair<std::string, std::string>> bad_statuses() {
  msgpack::sbuffer bin_activity;
  {
    msgpack::packer<msgpack::sbuffer> pk(bin_activity);
    pk.pack_array(2).pack(1u).pack_bin(2).pack_bin_body("hi", 2);
  }
  return {
      {"[]", packed(std::vector<int>{})},
      {"[1]", packed(std::make_tuple(1u))},
      {"status 0", packed(std::make_tuple(0u, std::string()))},
      {"status 5", packed(std::make_tuple(5u, std::string()))},
      {"negative status", packed(std::make_tuple(-1, std::string()))},
      {"bin activity", std::string(bin_activity.data(), bin_activity.size())},
      {"int activity", packed(std::make_tuple(1u, 5u))},
      {"invalid UTF-8", packed(std::make_tuple(1u, std::string("a\xff\xfe")))},
      {"truncated UTF-8", packed(std::make_tuple(1u, std::string("\xc3")))},
      {"overlong UTF-8", packed(std::make_tuple(1u, std::string("\xc0\xaf")))},
      {"a UTF-16 surrogate", packed(std::make_tuple(1u, std::string("\xed\xa0\x80")))},
      {"above U+10FFFF", packed(std::make_tuple(1u, std::string("\xf4\x90\x80\x80")))},
      {"three fields", packed(std::make_tuple(1u, std::string(), 1u))},
  };
}

TEST_F(PresenceTest, AnInvalidIdentifyPresenceIsRejected) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  std::uint64_t request = 10;
  for (const auto& [what, value] : bad_statuses()) {
    {
      hc::SessionClient c(endpoint());
      c.send_raw({identify_header(++request, 50, value)});
      std::vector<hc::Message> msgs;
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      const hc::ServerError* err = nullptr;
      while (!err && std::chrono::steady_clock::now() < end) {
        c.poll(msgs, std::chrono::milliseconds(20));
        for (auto& m : msgs) {
          ASSERT_FALSE(std::holds_alternative<hc::Ready>(m)) << what << " was accepted";
          if (auto* e = std::get_if<hc::ServerError>(&m)) err = e;
        }
      }
      ASSERT_NE(err, nullptr) << what;
      EXPECT_EQ(err->code, 14u) << what << ": " << err->text;  // REJECTED
      EXPECT_EQ(err->ref, request);
      EXPECT_NE(err->text.find("status 1..4"), std::string::npos) << err->text;
    }
  }
  EXPECT_TRUE(observer.expect(0, kQuiet).empty()) << "a rejected session is never seen";
}

TEST_F(PresenceTest, MalformedSetsAndPageRequestsAreAnsweredAndChangeNothing) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member user(endpoint(), 7, {1}, presence_of(kIdle, "away"));
  ASSERT_TRUE(user.ready());
  ASSERT_EQ(observer.expect(1, kQuiet), (std::vector<Update>{{7, kIdle, "away"}}));
  int sent = 0;
  for (const auto& [what, value] : bad_statuses()) {
    user.send(200, value);
    ++sent;
  }
  user.send(200, set_payload(kDnd, "x") + std::string("\x01", 1));  // trailing bytes
  user.send(204, packed(std::vector<int>{}));                       // 204 []
  user.send(204, packed(std::make_tuple(1u)));                      // 204 [1]
  user.send(204, packed(std::make_tuple(1u, std::string("a"))));    // 204 [1, "a"]
  sent += 4;
  ASSERT_TRUE(user.pump_until([&] { return user.refusals >= sent; }, std::chrono::seconds(5)));
  user.pump(kQuiet);
  EXPECT_EQ(user.refusals, sent);
  EXPECT_EQ(observer.expect(1, kQuiet).size(), 1u) << "nothing about the user changed";

  // A long activity is cut at 128 bytes on a character boundary: 100 two-byte
  // characters become 64 of them, never half of one.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  user.set(kDnd, accents);
  const auto updates = observer.expect(2, kQuiet);
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].status, unsigned{kDnd});
  EXPECT_EQ(updates[1].activity, accents.substr(0, 128));
  std::string odd = "a" + accents;  // 201 bytes: cut to 127, not 128
  user.set(kIdle, odd);
  const auto more = observer.expect(3, kQuiet);
  ASSERT_EQ(more.size(), 3u);
  EXPECT_EQ(more[2].activity, odd.substr(0, 127));
}

TEST_F(PresenceTest, AReconnectWithinGraceSendsNothingWhateverTheStatus) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member dnd(endpoint(), 7, {1}, presence_of(kDnd, "focus"));
  ASSERT_TRUE(dnd.ready());
  Member hidden(endpoint(), 8, {1}, presence_of(kInvisible));
  ASSERT_TRUE(hidden.ready());
  ASSERT_EQ(observer.expect(1, kQuiet), (std::vector<Update>{{7, kDnd, "focus"}}));

  // With RESUME: the session, and its status, persist.
  ASSERT_TRUE(dnd.reconnect_and_resume());
  ASSERT_TRUE(hidden.reconnect_and_resume());
  EXPECT_EQ(observer.expect(1, std::chrono::milliseconds(600)).size(), 1u);

  // Without: a new IDENTIFY carrying the same presence within the 400 ms grace.
  dnd.leave();
  hidden.leave();
  dnd.pump(std::chrono::milliseconds(50));
  hidden.pump(std::chrono::milliseconds(50));
  Member dnd2(endpoint(), 7, {1}, presence_of(kDnd, "focus"));
  Member hidden2(endpoint(), 8, {1}, presence_of(kInvisible));
  ASSERT_TRUE(dnd2.ready());
  ASSERT_TRUE(hidden2.ready());
  // Past the grace period: still nothing, neither a flap nor a flash of online.
  EXPECT_EQ(observer.expect(1, std::chrono::milliseconds(900)),
            (std::vector<Update>{{7, kDnd, "focus"}}));
  // And a newcomer's snapshot agrees.
  Member late(endpoint(), 101, {1});
  ASSERT_TRUE(late.ready());
  ASSERT_TRUE(late.pump_until([&] { return !late.snapshots.empty(); }, std::chrono::seconds(5)));
  late.pump(kQuiet);
  EXPECT_EQ(late.view.count(8), 0u) << "invisible stays invisible";
  EXPECT_EQ(late.view[7], std::make_pair(unsigned{kDnd}, std::string("focus")));
}

TEST_F(PresenceTest, AResumeAfterTheGracePeriodKeepsTheStatusAndShowsNothing) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member dnd(endpoint(), 7, {1}, presence_of(kDnd, "focus"));
  Member hidden(endpoint(), 8, {1}, presence_of(kInvisible));
  Member plain(endpoint(), 9, {1});
  for (Member* m : {&dnd, &hidden, &plain}) {
    ASSERT_TRUE(m->ready());
    ASSERT_TRUE(m->pump_until([&] { return !m->self.empty(); }, std::chrono::seconds(5)));
  }
  ASSERT_EQ(observer.expect(2, kQuiet).size(), 2u);
  const std::size_t own_before = dnd.self.size() + hidden.self.size() + plain.self.size();

  // Detached for 1 s, well past the 400 ms grace period: a session waiting
  // for RESUME still counts as present, so nothing is decided again.
  for (Member* m : {&dnd, &hidden, &plain}) {
    ASSERT_TRUE(m->reconnect_and_resume(std::chrono::milliseconds(1000)));
  }
  EXPECT_EQ(observer.expect(2, std::chrono::milliseconds(800)).size(), 2u) << "a flap";
  for (Member* m : {&dnd, &hidden, &plain}) m->pump(std::chrono::milliseconds(50));
  EXPECT_EQ(dnd.self.size() + hidden.self.size() + plain.self.size(), own_before);
  EXPECT_EQ(dnd.last_self(), (Update{1, kDnd, "focus"}));
  EXPECT_EQ(hidden.last_self(), (Update{1, kInvisible, ""}));

  // The resumed sessions still set their status as before.
  hidden.set(kIdle, "back");
  EXPECT_EQ(observer.expect(3, kQuiet).back(), (Update{8, kIdle, "back"}));
}

TEST_F(PresenceTest, OptionsAreValidatedAtStart) {
  for (const char* bad_option :
       {"presence.grace_ms=-5", "presence.min_interval_ms=soon", "presence.snapshot_page=0",
        "presence.snapshot_full_limit=1e3", "presence.directory_guilds=-1",
        "presence.directory_refresh_ms=0",
        "presence.directory_base=", "presence.directory_guilds=18446744073709551615"}) {
    const std::string bad = bad_option;
    Process p("presence-bad-option",
              all_in_one_args(port_base() + 40,
                              {"--plugin", std::string("presence=") + HEARTH_PRESENCE_PLUGIN,
                               "--plugin-required", "presence", "--plugin-option", bad}));
    EXPECT_NE(p.wait(std::chrono::seconds(10)), 0) << bad;
    const std::string key = bad.substr(0, bad.find('='));
    EXPECT_NE(p.log().find(key), std::string::npos) << p.log();
  }
}

TEST_F(PresenceTest, TheRateLimitFoldsFloodsAndKeepsTheLatest) {
  node_.reset();
  start("10000", "30000",
        {"--plugin-option", "presence.min_interval_ms=500", "--stats-interval-ms", "200"});
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member user(endpoint(), 7, {1});
  ASSERT_TRUE(user.ready());
  ASSERT_EQ(observer.expect(1, std::chrono::milliseconds(600)).size(), 1u);
  // The honest case: one change after a quiet spell goes out at once.
  const auto t0 = std::chrono::steady_clock::now();
  user.set(kIdle, "lunch");
  ASSERT_EQ(observer.expect(2, std::chrono::milliseconds(0)).size(), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(450)) << "not held";
  // A flood: 2,000 sets; the latest wins.
  for (int i = 0; i < 2000; ++i) {
    user.set(i % 2 ? kDnd : kOnline, "n" + std::to_string(i));
    if (i % 200 == 0) user.pump(std::chrono::milliseconds(0));
  }
  user.set(kDnd, "final");
  const auto flood_start = std::chrono::steady_clock::now();
  observer.pump_until(
      [&] {
        return observer.updates.back() == Update{7, kDnd, "final"};
      },
      std::chrono::seconds(5));
  observer.pump(std::chrono::milliseconds(700));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  const auto floors = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() / 500;
  EXPECT_EQ(observer.updates.back(), (Update{7, kDnd, "final"}));
  EXPECT_LE(observer.updates.size(), 2u + static_cast<std::size_t>(floors) + 1)
      << "at most one update per 500 ms";
  EXPECT_LT(std::chrono::steady_clock::now() - flood_start, std::chrono::seconds(3));
  EXPECT_TRUE(node_->wait_for_log("folded_sets=", std::chrono::seconds(3)));
  const std::string log = node_->log();
  const auto at = log.rfind("folded_sets=");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GT(std::stoull(log.substr(at + 12)), 1000u) << log.substr(at, 40);
}

TEST_F(PresenceTest, OwnStatusIsToldToTheUsersSessionsAndSnapshotsOmitTheRequester) {
  Member observer(endpoint(), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member phone(endpoint(), 7, {1});
  ASSERT_TRUE(phone.ready());
  ASSERT_EQ(observer.expect(1, std::chrono::milliseconds(0)).size(), 1u);
  Member desktop(endpoint(), 7, {1});
  ASSERT_TRUE(desktop.ready());
  ASSERT_TRUE(desktop.pump_until([&] { return !desktop.self.empty(); }, std::chrono::seconds(5)));
  EXPECT_EQ(desktop.self.back(), (Update{1, kOnline, ""}));
  // The second device's snapshot omits its own user, as the first one's did.
  ASSERT_FALSE(desktop.snapshots.empty());
  for (const auto& e : std::get<4>(desktop.snapshots[0])) EXPECT_NE(std::get<0>(e), 7u);
  for (const auto& e : std::get<4>(phone.snapshots[0])) EXPECT_NE(std::get<0>(e), 7u);
  EXPECT_EQ(std::get<1>(desktop.snapshots[0]), 2u) << "the count includes everyone shown";
  // A set on one device: both learn the aggregate, invisible included.
  desktop.set(kInvisible);
  ASSERT_TRUE(phone.pump_until([&] { return phone.self.size() >= 2; }, std::chrono::seconds(5)));
  EXPECT_EQ(phone.self.back(), (Update{1, kInvisible, ""}));
  ASSERT_TRUE(
      desktop.pump_until([&] { return desktop.self.size() >= 2; }, std::chrono::seconds(5)));
  EXPECT_EQ(desktop.self.back(), (Update{1, kInvisible, ""}));
  EXPECT_EQ(observer.expect(2, kQuiet).back(), (Update{7, kOffline, ""}));
}

TEST_F(PresenceTest, StatusIsPerUserAcrossGuildsOnASessionNode) {
  Member observer(endpoint(), 100, {1, 2});
  ASSERT_TRUE(observer.ready());
  Member a(endpoint(), 7, {1});  // follows guild 1 only
  ASSERT_TRUE(a.ready());
  Member b(endpoint(), 7, {2});  // follows guild 2 only
  ASSERT_TRUE(b.ready());
  ASSERT_EQ(observer.expect(2, kQuiet).size(), 2u);
  auto in_guild = [&](std::size_t from) {
    std::map<unsigned, unsigned> statuses;
    for (std::size_t i = from; i < observer.updates.size(); ++i) {
      ++statuses[observer.updates[i].status];
    }
    return statuses;
  };
  a.set(kDnd, "a");  // set on the device of guild 1: guild 2 shows it too
  ASSERT_EQ(observer.expect(4, kQuiet).size(), 4u);
  EXPECT_EQ(in_guild(2), (std::map<unsigned, unsigned>{{kDnd, 2}}));
  a.set(kInvisible);  // invisible anywhere is invisible everywhere
  ASSERT_EQ(observer.expect(6, kQuiet).size(), 6u);
  EXPECT_EQ(in_guild(4), (std::map<unsigned, unsigned>{{kOffline, 2}}));
  ASSERT_TRUE(b.pump_until([&] { return !b.self.empty() && b.self.back().status == kInvisible; },
                           std::chrono::seconds(5)));
}

TEST_F(PresenceTest, ALiveSubscribeGetsTheSnapshotFirstAndEveryLaterSet) {
  Member observer(endpoint(), 100, {1, 5});
  ASSERT_TRUE(observer.ready());
  Member phone(endpoint(), 7, {1});
  ASSERT_TRUE(phone.ready());
  Member desktop(endpoint(), 7, {1});  // the user's other device: guild 1 only
  ASSERT_TRUE(desktop.ready());
  phone.set(kDnd, "busy");
  ASSERT_EQ(observer.expect(2, kQuiet).size(), 2u);
  EXPECT_EQ(last(observer.in_guild[1]), (Update{7, kDnd, "busy"}));

  // The phone adds guild 5 with a live SUBSCRIBE: its snapshot (202) comes
  // first, then SUBSCRIBED, then its own status there (207), as for IDENTIFY.
  phone.arrivals.clear();
  phone.subscribe({5});
  ASSERT_TRUE(phone.ready());
  ASSERT_TRUE(phone.pump_until(
      [&] { return std::count(phone.arrivals.begin(), phone.arrivals.end(), "207 5") > 0; },
      std::chrono::seconds(5)));
  std::vector<std::string> guild5;
  for (const auto& a : phone.arrivals) {
    if (a.ends_with(" 5")) guild5.push_back(a);
  }
  EXPECT_EQ(guild5, (std::vector<std::string>{"202 5", "SUBSCRIBED 5", "207 5"}));
  EXPECT_EQ(phone.last_self(), (Update{5, kDnd, "busy"}));
  ASSERT_TRUE(
      observer.pump_until([&] { return !observer.in_guild[5].empty(); }, std::chrono::seconds(5)));
  EXPECT_EQ(observer.in_guild[5], (std::vector<Update>{{7, kDnd, "busy"}}));

  // A set on the other device, which never followed guild 5, reaches it.
  desktop.set(kInvisible);
  ASSERT_TRUE(observer.pump_until([&] { return observer.in_guild[5].size() >= 2; },
                                  std::chrono::seconds(5)));
  observer.pump(kQuiet);
  EXPECT_EQ(last(observer.in_guild[5]), (Update{7, kOffline, ""}));
  EXPECT_EQ(last(observer.in_guild[1]), (Update{7, kOffline, ""}));
  ASSERT_TRUE(phone.pump_until(
      [&] {
        return phone.last_self() == Update{5, kInvisible, ""};
      },
      std::chrono::seconds(5)));
}

// A broker, one guild node and two session nodes: a user's devices on
// different session nodes, following different guilds.
class PresenceAcrossNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    const int base = port_base() + 20;
    s1_endpoint_ = tcp(base + 3);
    s2_endpoint_ = tcp(base + 4);
    broker_ = std::make_unique<Process>(
        "xnode-broker", std::vector<std::string>{"broker", "--insecure", "--frontend", tcp(base),
                                                 "--backend", tcp(base + 1)});
    auto with = [](std::vector<std::string> args) {
      for (const char* extra : {"--plugin-option", "presence.min_interval_ms=50"}) {
        args.push_back(extra);
      }
      return args;
    };
    guild_ = std::make_unique<Process>(
        "xnode-guild", with(presence_node_args("guild-1", "guild", base + 1, base + 2, 400)));
    s1_ = std::make_unique<Process>(
        "xnode-session-1",
        with(presence_node_args("session-1", "session", base + 1, base + 3, 400)));
    s2_ = std::make_unique<Process>(
        "xnode-session-2",
        with(presence_node_args("session-2", "session", base + 1, base + 4, 400)));
    ASSERT_TRUE(
        broker_->wait_for_log("with 1 guild node(s) of 3 node(s)", std::chrono::seconds(10)));
  }
  static constexpr auto kQuiet = std::chrono::milliseconds(300);
  std::string s1_endpoint_, s2_endpoint_;
  std::unique_ptr<Process> broker_, guild_, s1_, s2_;
};

TEST_F(PresenceAcrossNodes, AUserHasOneStatusInEveryGuildWhicheverNodeSetIt) {
  Member observer(s1_endpoint_, 100, {1, 2, 4});
  ASSERT_TRUE(observer.ready());
  Member a(s1_endpoint_, 7, {1});  // session node 1, guild 1
  ASSERT_TRUE(a.ready());
  Member b(s2_endpoint_, 7, {2});  // session node 2, guild 2
  ASSERT_TRUE(b.ready());
  ASSERT_TRUE(
      observer.pump_until([&] { return observer.updates.size() >= 2; }, std::chrono::seconds(5)));

  a.set(kDnd, "a");  // set on node 1: guild 2, followed only from node 2, shows it
  ASSERT_TRUE(observer.pump_until(
      [&] { return observer.view[7] == std::make_pair(unsigned{kDnd}, std::string("a")); },
      std::chrono::seconds(5)));
  observer.pump(kQuiet);
  EXPECT_EQ(last(observer.in_guild[1]), (Update{7, kDnd, "a"}));
  EXPECT_EQ(last(observer.in_guild[2]), (Update{7, kDnd, "a"}));
  ASSERT_TRUE(b.pump_until(
      [&] {
        return b.last_self() == Update{2, kDnd, "a"};
      },
      std::chrono::seconds(5)));

  b.set(kInvisible);  // invisible on node 2's device: invisible everywhere
  ASSERT_TRUE(observer.pump_until(
      [&] {
        return last(observer.in_guild[1]).status == kOffline &&
               last(observer.in_guild[2]).status == kOffline;
      },
      std::chrono::seconds(5)));
  ASSERT_TRUE(a.pump_until(
      [&] {
        return a.last_self() == Update{1, kInvisible, ""};
      },
      std::chrono::seconds(5)));

  // A third device on node 2 into guild 4, with no presence in its IDENTIFY:
  // it takes the user's status from the directory, so guild 4 never shows
  // the user, not even for a moment.
  Member c(s2_endpoint_, 7, {4});
  ASSERT_TRUE(c.ready());
  ASSERT_TRUE(c.pump_until([&] { return !c.self.empty(); }, std::chrono::seconds(5)));
  EXPECT_EQ(c.last_self(), (Update{4, kInvisible, ""}));
  observer.pump(std::chrono::milliseconds(500));
  EXPECT_TRUE(observer.in_guild[4].empty()) << observer.in_guild[4].front();

  a.set(kIdle, "back");  // and back, from node 1: all three guilds
  ASSERT_TRUE(observer.pump_until(
      [&] {
        return !observer.in_guild[4].empty() && last(observer.in_guild[2]).status == kIdle &&
               last(observer.in_guild[1]).status == kIdle;
      },
      std::chrono::seconds(5)));
  observer.pump(kQuiet);
  EXPECT_EQ(observer.in_guild[4], (std::vector<Update>{{7, kIdle, "back"}}));
  ASSERT_TRUE(c.pump_until(
      [&] {
        return c.last_self() == Update{4, kIdle, "back"};
      },
      std::chrono::seconds(5)));
  for (Process* p : {broker_.get(), guild_.get(), s1_.get(), s2_.get()}) {
    EXPECT_TRUE(p->alive());
  }
}

TEST(PresenceMove, ADirectoryThatMovesIsRebuiltWithinARefreshPeriod) {
  const int base = port_base() + 30;
  // User 7's directory guild (2^64 - 2^32 + 7) lives on guild-1 until it
  // dies; guilds 1 and 2 stay on guild-2 throughout.
  Process broker("dmove-broker",
                 {"broker", "--insecure", "--frontend", tcp(base), "--backend", tcp(base + 1),
                  "--node-timeout-ms", "1000", "--pin", "18446744069414584327=guild-1", "--pin",
                  "1=guild-2", "--pin", "2=guild-2"});
  auto args = [&](const std::string& name, const std::string& roles, int port) {
    auto a = presence_node_args(name, roles, base + 1, port, 2000);
    a.insert(a.end(), {"--plugin-option", "presence.min_interval_ms=50", "--plugin-option",
                       "presence.directory_refresh_ms=500"});
    return a;
  };
  Process g1("dmove-guild-1", args("guild-1", "guild", base + 2));
  Process g2("dmove-guild-2", args("guild-2", "guild", base + 3));
  Process s1("dmove-session-1", args("session-1", "session", base + 4));
  Process s2("dmove-session-2", args("session-2", "session", base + 5));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 4 node(s)", std::chrono::seconds(10)));

  Member observer(tcp(base + 4), 100, {1, 2});
  ASSERT_TRUE(observer.ready());
  Member a(tcp(base + 4), 7, {1});  // session-1, guild 1
  ASSERT_TRUE(a.ready());
  Member b(tcp(base + 5), 7, {2});  // session-2, guild 2
  ASSERT_TRUE(b.ready());
  a.set(kDnd, "before");
  ASSERT_TRUE(observer.pump_until(
      [&] {
        return last(observer.in_guild[2]) == Update{7, kDnd, "before"};
      },
      std::chrono::seconds(5)));

  g1.kill_hard();  // the directory's state is gone with it
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 3 node(s)", std::chrono::seconds(5)));
  const auto t0 = std::chrono::steady_clock::now();
  a.set(kIdle, "after");  // reaches guild 2 once guild-2's new directory is rebuilt
  ASSERT_TRUE(observer.pump_until(
      [&] {
        return last(observer.in_guild[2]) == Update{7, kIdle, "after"};
      },
      std::chrono::seconds(5)))
      << last(observer.in_guild[2]);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  ASSERT_TRUE(b.pump_until(
      [&] {
        return b.last_self() == Update{2, kIdle, "after"};
      },
      std::chrono::seconds(5)));
  for (const Update& u : observer.in_guild[2]) {
    EXPECT_NE(u.status, unsigned{kOffline}) << "a flap in guild 2";
  }
}

TEST(PresenceMove, AGuildThatMovesIsRebuiltFromLiveSessionsWithoutFlaps) {
  const int base = port_base();
  // Guild 1 lives on guild-1 until guild-1 dies; then the ring moves it.
  Process broker("move-broker", {"broker", "--insecure", "--frontend", tcp(base), "--backend",
                                 tcp(base + 1), "--node-timeout-ms", "1000", "--pin", "1=guild-1"});
  Process g1("move-guild-1", presence_node_args("guild-1", "guild", base + 1, base + 2, 2000));
  Process g2("move-guild-2", presence_node_args("guild-2", "guild", base + 1, base + 3, 2000));
  Process s1("move-session-1",
             presence_node_args("session-1", "session", base + 1, base + 4, 2000));
  ASSERT_TRUE(broker.wait_for_log("with 2 guild node(s) of 3 node(s)", std::chrono::seconds(10)));

  Member observer(tcp(base + 4), 100, {1});
  ASSERT_TRUE(observer.ready());
  Member user(tcp(base + 4), 7, {1});
  ASSERT_TRUE(user.ready());
  ASSERT_EQ(observer.expect(1, std::chrono::milliseconds(0)).size(), 1u);
  user.set(kIdle, "away");
  ASSERT_EQ(observer.expect(2, std::chrono::milliseconds(200)),
            (std::vector<Update>{{7, kOnline, ""}, {7, kIdle, "away"}}));

  g1.kill_hard();
  ASSERT_TRUE(broker.wait_for_log("with 1 guild node(s) of 2 node(s)", std::chrono::seconds(5)));
  // Both sessions re-subscribe at guild-2, which rebuilds the guild from them.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < end) {
    observer.pump(std::chrono::milliseconds(20));
    user.pump(std::chrono::milliseconds(20));
  }
  ASSERT_GE(observer.snapshots.size(), 2u) << "a snapshot from the new owner";
  for (std::size_t i = 2; i < observer.updates.size(); ++i) {
    EXPECT_NE(observer.updates[i].status, unsigned{kOffline}) << "a flap after the move";
    EXPECT_EQ(observer.updates[i], (Update{7, kIdle, "away"})) << "status lost in the move";
  }
  ASSERT_EQ(observer.view.count(7), 1u);
  EXPECT_EQ(observer.view[7], std::make_pair(unsigned{kIdle}, std::string("away")));
  EXPECT_TRUE(g2.alive());
}

}  // namespace
}  // namespace hearth::test
