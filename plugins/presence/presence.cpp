// Presence: who is online in every guild, as a plugin on the public ABI.
//
// Session side (the session's shard): a session sets its status with a
// PLUGIN_MESSAGE; the plugin publishes it to each of the session's guilds as
// an internal event. Guild side (the guild's shard): each guild keeps, per
// user, the sessions subscribed and the statuses they set; the user's
// effective presence is the most recently set status of their connected
// sessions (invisible shows as offline), offline once none is left and the
// grace period has passed. A change anyone could see becomes a
// PRESENCE_UPDATE guild event, sequenced with the guild's other events; an
// internal event that changes nothing visible is dropped.
#include <chrono>
#include <map>
#include <msgpack.hpp>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "hearth/plugin.hpp"
#include "presence_protocol.hpp"

namespace {

using namespace hearth::presence;
using Clock = std::chrono::steady_clock;

// When a status was set: wall-clock ms (comparable across session nodes, so a
// guild rebuilt elsewhere orders its users' sessions the same way), times
// 1,000, plus an arrival counter so sets within one ms keep their order.
std::uint64_t set_time_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// A session's current status as it travels with its SUBSCRIBEs:
// [status, activity, set_time_ms].
std::string pack_session_status(std::uint8_t status, const std::string& activity,
                                std::uint64_t when) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(status, activity, when));
  return std::string(b.data(), b.size());
}

struct SessionState {  // session slot, on the session's shard
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
};

struct Set {  // what one session last set
  std::uint8_t status = kOnline;
  std::string activity;
  std::uint64_t stamp = 0;  // order of setting; 0: never set (online by default)
  bool connected = false;   // subscribed to this guild right now
};

struct UserPresence {
  std::map<std::uint64_t, Set> sessions;
  std::uint8_t shown = kOffline;  // what the guild last told everyone
  std::string shown_activity;
  std::uint64_t grace_timer = 0;  // pending offline, 0: none
};

struct GuildPresence {                          // guild slot, on the guild's shard
  std::map<std::uint64_t, UserPresence> users;  // ordered: snapshot pages are stable
  std::unordered_map<std::uint64_t, std::string> session_nodes;  // connected sessions
  std::uint64_t arrivals = 0;
};

std::string pack_update(std::uint64_t user, std::uint8_t status, const std::string& activity) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(user, status, activity));
  return std::string(b.data(), b.size());
}

// The status others should see.
std::pair<std::uint8_t, std::string> effective(const UserPresence& u) {
  const Set* latest = nullptr;
  for (const auto& [session, set] : u.sessions) {
    if (set.connected && (!latest || set.stamp > latest->stamp)) latest = &set;
  }
  if (!latest || latest->status == kInvisible || latest->status == kOffline) return {kOffline, ""};
  return {latest->status, latest->activity};
}

class Presence : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    grace_ms_ = std::stoull(host.config("grace_ms", "5000"));
    page_size_ = std::max<std::size_t>(1, std::stoull(host.config("snapshot_page", "100")));
    full_limit_ = std::stoull(host.config("snapshot_full_limit", "1000"));
    const std::string stream = host.config("stream");
    if (!stream.empty()) {
      try {
        stream_ctx_ = std::make_unique<zmq::context_t>(1);
        stream_ = std::make_unique<zmq::socket_t>(*stream_ctx_, zmq::socket_type::pub);
        stream_->set(zmq::sockopt::linger, 0);
        stream_->set(zmq::sockopt::sndhwm, 100000);  // beyond it a slow reader misses changes
        stream_->bind(stream);
      } catch (const zmq::error_t& e) {
        host.warn("cannot bind the presence stream on " + stream + ": " + e.what());
        return false;
      }
    }
    host.info("grace " + std::to_string(grace_ms_) + " ms, snapshots complete up to " +
              std::to_string(full_limit_) + " online, then pages of " + std::to_string(page_size_) +
              (stream.empty() ? std::string() : ", change stream on " + stream));
    return true;
  }

  void on_node_stop(hearth::Host&) override {
    std::lock_guard lock(stream_mu_);
    stream_.reset();
    stream_ctx_.reset();
  }

  // ---- session side ----

  std::string on_identify(hearth::Host& host, const hearth_identify_event& ev) override {
    auto* s = new SessionState{ev.user_id, {ev.guilds, ev.guilds + ev.guild_count}};
    host.set_session_slot(ev.session_id, s);
    return {};
  }
  void on_session_free(std::uint64_t, void* slot) override {
    delete static_cast<SessionState*>(slot);
  }
  std::vector<std::uint64_t> message_kinds() const override { return {kSetKind, kPageRequestKind}; }
  void on_message(hearth::Host& host, const hearth_message_event& ev) override {
    auto* s = static_cast<SessionState*>(host.session_slot(ev.session_id));
    if (!s) return;
    if (ev.kind == kPageRequestKind) {
      std::uint64_t guild = 0, page = 0;
      try {
        auto h = unpack_untrusted(ev.payload.data, ev.payload.size);
        std::tie(guild, page) = h.get().as<std::tuple<std::uint64_t, std::uint64_t>>();
      } catch (const std::exception&) {
        return refuse(host, ev.session_id, "PRESENCE_PAGE payload must be [guild, page]");
      }
      msgpack::sbuffer b;
      msgpack::pack(b, std::make_tuple(ev.session_id, page));
      host.publish(guild, kInternalPageKind, std::string_view(b.data(), b.size()));
      return;
    }
    std::uint8_t status = kOnline;
    std::string activity;
    if (!parse_set(ev.payload, &status, &activity)) {
      return refuse(host, ev.session_id,
                    "PRESENCE_SET payload must be [status 0..4, activity string]");
    }
    msgpack::sbuffer b;
    const std::uint64_t when = set_time_ms();
    msgpack::pack(b, std::make_tuple(s->user, ev.session_id, status, activity, when));
    // Also remembered with the session's subscriptions: a guild that moves
    // is rebuilt with it (docs/presence.md).
    host.set_subscription_data(ev.session_id, pack_session_status(status, activity, when));
    const std::string_view internal(b.data(), b.size());
    for (std::uint64_t guild : s->guilds) host.publish(guild, kInternalKind, internal);
    host.count("status_sets");
  }

  // ---- guild side ----

  void on_subscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    GuildPresence& g = guild(host, ev.guild_id);
    UserPresence& u = g.users[ev.user_id];
    Set& set = u.sessions[ev.session_id];
    set.connected = true;
    if (ev.subscription_data.size > 0) {  // a session that set a status before
      try {
        auto h = unpack_untrusted(ev.subscription_data.data, ev.subscription_data.size);
        auto [status, activity, when] =
            h.get().as<std::tuple<std::uint8_t, std::string, std::uint64_t>>();
        if (when * 1000 > set.stamp) {
          set.status = status;
          set.activity = activity;
          set.stamp = when * 1000;
        }
      } catch (const std::exception&) {
        host.warn("ignoring malformed subscription data");
      }
    }
    u.grace_timer = 0;  // back within the grace period: no flap
    g.session_nodes[ev.session_id] = ev.session_node;
    recompute(host, ev.guild_id, ev.user_id);
    send_snapshot(host, ev.guild_id, ev.session_node, ev.session_id, g, 0);
  }

  void on_unsubscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    auto* g = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    if (!g) return;
    g->session_nodes.erase(ev.session_id);
    auto it = g->users.find(ev.user_id);
    if (it == g->users.end()) return;
    UserPresence& u = it->second;
    u.sessions.erase(ev.session_id);
    const bool any_connected = effective_connected(u);
    if (!any_connected) {
      // Offline only after the grace period, so a quick reconnect shows nothing.
      u.grace_timer = host.set_timer(grace_ms_, 0);
      std::lock_guard lock(timers_mu_);
      timers_[u.grace_timer] = {ev.guild_id, ev.user_id};
    } else {
      recompute(host, ev.guild_id, ev.user_id);
    }
  }

  void on_timer(hearth::Host& host, const hearth_timer_event& ev) override {
    std::pair<std::uint64_t, std::uint64_t> target;
    {
      std::lock_guard lock(timers_mu_);
      auto it = timers_.find(ev.timer_id);
      if (it == timers_.end()) return;
      target = it->second;
      timers_.erase(it);
    }
    auto* g = static_cast<GuildPresence*>(host.guild_slot(target.first));
    if (!g) return;
    auto it = g->users.find(target.second);
    if (it == g->users.end() || it->second.grace_timer != ev.timer_id) return;  // came back
    it->second.grace_timer = 0;
    recompute(host, target.first, target.second);
  }

  PublishDecision on_publish(hearth::Host& host, const hearth_publish_event& ev) override {
    const bool ours = ev.kind == kInternalKind || ev.kind == kInternalPageKind;
    if (ev.kind == kUpdateKind || (ours && !ev.from_plugin)) {
      return PublishDecision::drop("presence kinds are the presence plugin's own");
    }
    if (!ours) return PublishDecision::pass();
    if (ev.kind == kInternalPageKind) {
      serve_page(host, ev);
      return PublishDecision::drop("page served");
    }
    std::uint64_t user = 0, session = 0, when = 0;
    std::uint8_t status = kOnline;
    std::string activity;
    if (!parse_internal(ev.payload, &user, &session, &status, &activity, &when)) {
      return PublishDecision::drop("malformed presence update");
    }
    GuildPresence& g = guild(host, ev.guild_id);
    auto found = g.users.find(user);
    if (session != 0) {  // a status set; session 0 only asks to recompute
      found = g.users.try_emplace(user).first;
      Set& set = found->second.sessions[session];
      set.status = status;
      set.activity = activity;
      set.stamp = when * 1000 + (g.arrivals++ % 1000);
    }
    if (found == g.users.end()) return PublishDecision::drop("no such user");
    UserPresence& u = found->second;
    // Decided here, as the guild sequences the event, so updates reach
    // everyone in the order they were decided.
    const auto [shown, shown_activity] = effective(u);
    const bool waiting = u.grace_timer != 0;  // offline only when the grace period ends
    if (waiting || (shown == u.shown && shown_activity == u.shown_activity)) {
      if (!waiting && u.sessions.empty() && u.shown == kOffline) g.users.erase(found);
      return PublishDecision::drop("no visible change");
    }
    stream_change(user, ev.guild_id, u.shown, shown, shown_activity);
    u.shown = shown;
    u.shown_activity = shown_activity;
    host.count("updates");
    const std::string update = pack_update(user, shown, shown_activity);
    if (u.sessions.empty() && shown == kOffline) g.users.erase(found);
    PublishDecision d = PublishDecision::replace(update, kUpdateKind);
    d.exclude_user = user;  // every *other* session of the guild is told
    return d;
  }

  void on_guild_free(std::uint64_t, void* slot) override {
    delete static_cast<GuildPresence*>(slot);
  }

 private:
  static bool effective_connected(const UserPresence& u) {
    for (const auto& [s, set] : u.sessions) {
      if (set.connected) return true;
    }
    return false;
  }

  GuildPresence& guild(hearth::Host& host, std::uint64_t id) {
    auto* g = static_cast<GuildPresence*>(host.guild_slot(id));
    if (!g) {
      g = new GuildPresence;
      host.set_guild_slot(id, g);
    }
    return *g;
  }

  // Asks the guild to decide the user's presence when it sequences this
  // internal event (see on_publish): decisions and updates stay in one order.
  static void recompute(hearth::Host& host, std::uint64_t guild, std::uint64_t user) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(user, std::uint64_t{0}, std::uint8_t{kOnline}, std::string(),
                                     std::uint64_t{0}));
    host.publish(guild, kInternalKind, std::string_view(b.data(), b.size()));
  }

  // Up to snapshot_full_limit online users: all of them at once. Above it:
  // the count and one page; the client asks for further pages (kPageRequestKind).
  void send_snapshot(hearth::Host& host, std::uint64_t guild, const std::string& node,
                     std::uint64_t session, const GuildPresence& g, std::uint64_t page_index) {
    std::uint64_t online = 0;
    for (const auto& [user, u] : g.users) online += u.shown != kOffline;
    const std::size_t page_size = online <= full_limit_ ? online : page_size_;
    const std::uint64_t skip = page_index * page_size;
    std::vector<std::tuple<std::uint64_t, std::uint8_t, std::string>> page;
    std::uint64_t seen = 0;
    for (const auto& [user, u] : g.users) {
      if (u.shown == kOffline) continue;
      if (seen++ < skip) continue;
      if (page.size() >= page_size) break;
      page.emplace_back(user, u.shown, u.shown_activity);
    }
    const bool more = skip + page.size() < online;
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(guild, online, page_index, more, page));
    host.send_to_member(node.c_str(), session, kSnapshotKind, std::string_view(b.data(), b.size()));
  }

  void serve_page(hearth::Host& host, const hearth_publish_event& ev) {
    std::uint64_t session = 0, page = 0;
    try {
      auto h = unpack_untrusted(ev.payload.data, ev.payload.size);
      std::tie(session, page) = h.get().as<std::tuple<std::uint64_t, std::uint64_t>>();
    } catch (const std::exception&) {
      return;
    }
    auto* g = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    if (!g) return;
    auto node = g->session_nodes.find(session);
    if (node == g->session_nodes.end()) return;  // only members may read the guild's presence
    send_snapshot(host, ev.guild_id, node->second, session, *g, page);
  }

  // One message per visible change on the backend stream: topic "presence",
  // then [user, guild, old, new, activity, unix_ms]. Sends are serialised, so
  // a user's changes leave in the order the guilds decided them.
  void stream_change(std::uint64_t user, std::uint64_t guild, std::uint8_t old_status,
                     std::uint8_t new_status, const std::string& activity) {
    if (!stream_) return;
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(user, guild, old_status, new_status, activity,
                                     static_cast<std::uint64_t>(now)));
    std::lock_guard lock(stream_mu_);
    if (!stream_) return;
    stream_->send(zmq::str_buffer("presence"),
                  zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    stream_->send(zmq::buffer(b.data(), b.size()), zmq::send_flags::dontwait);
  }

  static bool parse_set(hearth_bytes payload, std::uint8_t* status, std::string* activity) {
    try {
      auto h = unpack_untrusted(payload.data, payload.size);
      auto t = h.get().as<std::tuple<std::uint8_t, std::string>>();
      *status = std::get<0>(t);
      *activity = std::get<1>(t).substr(0, 128);
    } catch (const std::exception&) {
      return false;
    }
    return *status <= kInvisible;
  }

  // A client's bad request is answered and counted, never thrown: a plugin
  // failure counts toward disabling the plugin, which one client must not
  // be able to do to everyone.
  static void refuse(hearth::Host& host, std::uint64_t session, const std::string& why) {
    host.count("bad_requests");
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(why));
    host.send_to_session(session, kErrorKind, std::string_view(b.data(), b.size()));
  }

  static bool parse_internal(hearth_bytes payload, std::uint64_t* user, std::uint64_t* session,
                             std::uint8_t* status, std::string* activity, std::uint64_t* when) {
    try {
      auto h = unpack_untrusted(payload.data, payload.size);
      auto t = h.get()
                   .as<std::tuple<std::uint64_t, std::uint64_t, std::uint8_t, std::string,
                                  std::uint64_t>>();
      std::tie(*user, *session, *status, *activity, *when) = t;
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  std::uint64_t grace_ms_ = 5000;
  std::size_t page_size_ = 100;
  std::size_t full_limit_ = 1000;
  std::mutex stream_mu_;
  std::unique_ptr<zmq::context_t> stream_ctx_;
  std::unique_ptr<zmq::socket_t> stream_;
  std::mutex timers_mu_;  // timers are set and fired on guild shards, several at once
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> timers_;
};

}  // namespace

HEARTH_PLUGIN(Presence, "presence", "who is online, per guild, with a grace period")
