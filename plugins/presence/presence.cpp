// Presence: who is online in every guild, as a plugin on the public ABI.
//
// Session side (the session's shard): a session starts with the status its
// IDENTIFY carried (online without one) and sets it with a PLUGIN_MESSAGE; the
// plugin publishes each set to every guild of the user's sessions on this
// node as an internal event, and to the user's directory guild, which sends
// it on to every guild showing the user, on any node (directory.hpp). Guild
// side (the guild's shard): each guild keeps, per user, the sessions
// subscribed and the newest status the user set; the user shows that status
// (invisible shows as offline) while any session is subscribed, and offline
// once none is left and the grace period has passed. A change anyone could
// see becomes a PRESENCE_UPDATE guild event, sequenced with the guild's other
// events, at most one per user per `min_interval_ms` (later changes are folded
// into the next one); an internal event that changes nothing visible is
// dropped.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <limits>
#include <map>
#include <msgpack.hpp>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "directory.hpp"
#include "hearth/plugin.hpp"
#include "presence_protocol.hpp"

namespace {

using namespace hearth::presence;
using Clock = std::chrono::steady_clock;

// A directory forgets registrations not refreshed for this many refresh periods.
constexpr std::uint64_t kDirectoryExpiryPeriods = 3;

std::uint64_t wall_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count());
}

// ---- validation of client bytes ----

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF.
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

// Valid UTF-8 cut to at most `max` bytes, on a character boundary.
std::string cut_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut));
}

// One MessagePack object filling the bytes exactly (trailing bytes refused),
// with the bounds of unpack_untrusted.
msgpack::object_handle unpack_exact(hearth_bytes b) {
  std::size_t offset = 0;
  auto h = msgpack::unpack(static_cast<const char*>(b.data), b.size, offset, nullptr, nullptr,
                           msgpack::unpack_limit(100000, 1000, 1 << 20, 1 << 20, 1024, 8));
  if (offset != b.size) throw std::runtime_error("trailing bytes");
  return h;
}

// [status 1..4, activity: UTF-8 str], exactly. Empty `why` when valid.
bool parse_status(const msgpack::object& o, std::uint8_t* status, std::string* activity) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) return false;
  const msgpack::object& s = o.via.array.ptr[0];
  const msgpack::object& a = o.via.array.ptr[1];
  if (s.type != msgpack::type::POSITIVE_INTEGER || s.via.u64 < kOnline || s.via.u64 > kInvisible) {
    return false;
  }
  if (a.type != msgpack::type::STR) return false;
  const std::string_view text(a.via.str.ptr, a.via.str.size);
  if (!valid_utf8(text)) return false;
  *status = static_cast<std::uint8_t>(s.via.u64);
  *activity = cut_utf8(text, kMaxActivityBytes);
  return true;
}

bool parse_status_bytes(hearth_bytes b, std::uint8_t* status, std::string* activity) {
  try {
    auto h = unpack_exact(b);
    return parse_status(h.get(), status, activity);
  } catch (const std::exception&) {
    return false;
  }
}

// [guild, after], two unsigned integers, exactly.
bool parse_page_request(hearth_bytes b, std::uint64_t* guild, std::uint64_t* after) {
  try {
    auto h = unpack_exact(b);
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) return false;
    const msgpack::object* f = o.via.array.ptr;
    if (f[0].type != msgpack::type::POSITIVE_INTEGER ||
        f[1].type != msgpack::type::POSITIVE_INTEGER) {
      return false;
    }
    *guild = f[0].via.u64;
    *after = f[1].via.u64;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A plugin option: a non-negative decimal integer, or `fallback` when unset.
std::uint64_t option(hearth::Host& host, const char* key, std::uint64_t fallback,
                     std::uint64_t min = 0) {
  const std::string text = host.config(key, "\x01");
  if (text == "\x01") return fallback;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string("presence.") + key + ": '" + text +
                                "' is not a non-negative integer");
  }
  if (v < min) {
    throw std::invalid_argument(std::string("presence.") + key + " must be at least " +
                                std::to_string(min));
  }
  return v;
}

// A session's current status as it travels with its SUBSCRIBEs:
// [status, activity, stamp].
std::string pack_session_status(std::uint8_t status, const std::string& activity,
                                std::uint64_t stamp) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(status, activity, stamp));
  return std::string(b.data(), b.size());
}

struct SessionState {  // session slot, on the session's shard
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
};

// The user's sessions on this node and the guilds they follow (session side,
// shared by the node's shards): a set on one device reaches every guild of
// the user's devices here (docs/presence.md, "Per user").
struct LocalUser {
  std::size_t sessions = 0;
  std::map<std::uint64_t, std::size_t> guilds;  // guild -> sessions following it
};

struct UserPresence {                      // per guild, on the guild's shard
  std::map<std::uint64_t, bool> sessions;  // subscribed sessions -> owed a 207
  // The status the user most recently set (stamp 0: never; online).
  std::uint8_t status = kOnline;
  std::string activity;
  std::uint64_t stamp = 0;
  std::uint8_t shown = kOffline;  // what the guild last told everyone
  std::string shown_activity;
  std::uint8_t self = kOffline;  // what the user's own sessions were last told
  std::string self_activity;
  std::uint64_t grace_timer = 0;   // pending offline (or clean-up), 0: none
  std::uint64_t flush_timer = 0;   // a change held by the rate limit, 0: none
  std::uint64_t announced_ms = 0;  // steady ms of the last update, 0: never
  bool registered = false;         // with the user's directory (unregistered when forgotten)
  bool awaiting = false;           // nothing decided until the directory answers
  std::uint64_t await_timer = 0;   // the bound on that wait
};

struct Member {
  std::string node;
  std::uint64_t user = 0;
};

struct GuildPresence {                                // guild slot, on the guild's shard
  std::map<std::uint64_t, UserPresence> users;        // ordered by user id: pages by cursor
  std::unordered_map<std::uint64_t, Member> members;  // subscribed sessions
  std::uint64_t online = 0;                           // users shown as not offline
  std::uint64_t version = 0;        // visible changes so far (PRESENCE_UPDATEs sent)
  std::uint64_t refresh_timer = 0;  // re-registering the users with their directories
};

struct DirectoryGuild {  // one directory guild, on the shard owning its id
  hearth::presence::UserDirectory users;
  std::uint64_t sweep_timer = 0;
};

std::string pack_update(std::uint64_t user, std::uint8_t status, const std::string& activity,
                        std::uint64_t version) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(user, status, activity, version));
  return std::string(b.data(), b.size());
}

enum class TimerKind { kGrace, kFlush, kAwait, kRefresh, kSweep };
struct TimerTarget {
  std::uint64_t guild;
  std::uint64_t user;
  TimerKind kind;
};

class Presence : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    try {
      grace_ms_ = option(host, "grace_ms", 5000);
      page_size_ = option(host, "snapshot_page", 100, 1);
      full_limit_ = option(host, "snapshot_full_limit", 1000);
      min_interval_ms_ = option(host, "min_interval_ms", 1000);
      directory_guilds_ = option(host, "directory_guilds", 64);
      directory_base_ = option(host, "directory_base", 0xFFFFFFFF00000000ull);
      refresh_ms_ = option(host, "directory_refresh_ms", 10000, 1);
      directory_wait_ms_ = option(host, "directory_wait_ms", 1000);
      if (directory_guilds_ > 0 &&
          directory_guilds_ - 1 > std::numeric_limits<std::uint64_t>::max() - directory_base_) {
        throw std::invalid_argument(
            "presence.directory_guilds: directory_base + directory_guilds passes the largest "
            "guild id");
      }
    } catch (const std::invalid_argument& e) {
      host.warn(e.what());
      return false;
    }
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
    host.info("grace " + std::to_string(grace_ms_) + " ms, at most one update per user per " +
              std::to_string(min_interval_ms_) + " ms, snapshots complete up to " +
              std::to_string(full_limit_) + " online, then pages of " + std::to_string(page_size_) +
              (directory_guilds_ == 0
                   ? std::string(", status per session node (no directory)")
                   : ", per-user directory in guilds " + std::to_string(directory_base_) + ".." +
                         std::to_string(directory_base_ + (directory_guilds_ - 1)) +
                         " refreshed every " + std::to_string(refresh_ms_) +
                         " ms, waited for up to " + std::to_string(directory_wait_ms_) + " ms") +
              (stream.empty() ? std::string() : ", change stream on " + stream));
    return true;
  }

  void on_node_stop(hearth::Host&) override {
    std::lock_guard lock(stream_mu_);
    stream_.reset();
    stream_ctx_.reset();
  }

  void on_stats(hearth::Host& host) override {
    host.gauge("folded_sets", folded_.load(std::memory_order_relaxed));
  }

  // ---- session side ----

  std::string on_identify(hearth::Host& host, const hearth_identify_event& ev) override {
    hearth_bytes presence{nullptr, 0};
    if (ev.struct_size >= offsetof(hearth_identify_event, presence) + sizeof(hearth_bytes)) {
      presence = ev.presence;
    }
    std::uint8_t status = kOnline;
    std::string activity;
    const bool has_presence = presence.size > 0;
    if (has_presence && !parse_status_bytes(presence, &status, &activity)) {
      host.count("bad_requests");
      return "presence must be [status 1..4 (online, idle, dnd, invisible), activity: a UTF-8 "
             "str]";
    }
    auto* s = new SessionState{ev.user_id, {ev.guilds, ev.guilds + ev.guild_count}};
    std::sort(s->guilds.begin(), s->guilds.end());
    host.set_session_slot(ev.session_id, s);
    std::vector<std::uint64_t> others;  // guilds of the user's other sessions here
    {
      std::lock_guard lock(users_mu_);
      LocalUser& u = local_users_[ev.user_id];
      ++u.sessions;
      for (std::uint64_t g : s->guilds) ++u.guilds[g];
      if (has_presence) {
        for (const auto& [g, n] : u.guilds) {
          if (!std::binary_search(s->guilds.begin(), s->guilds.end(), g)) others.push_back(g);
        }
      }
    }
    if (has_presence) {
      // The session's own guilds learn it with its SUBSCRIBEs (no update of
      // its own: a reconnect with the same status shows nothing); the user's
      // other guilds on this node as a set.
      const std::uint64_t stamp = next_stamp();
      host.set_subscription_data(ev.session_id, pack_session_status(status, activity, stamp));
      if (!others.empty()) {
        const std::string internal =
            pack_internal(ev.user_id, ev.session_id, status, activity, stamp);
        for (std::uint64_t g : others) host.publish(g, kInternalKind, internal);
      }
      tell_directory(host, ev.user_id, status, activity, stamp);
    }
    return {};
  }
  void on_session_free(std::uint64_t, void* slot) override {
    auto* s = static_cast<SessionState*>(slot);
    if (!s) return;
    {
      std::lock_guard lock(users_mu_);
      auto it = local_users_.find(s->user);
      if (it != local_users_.end()) {
        for (std::uint64_t g : s->guilds) {
          auto gi = it->second.guilds.find(g);
          if (gi != it->second.guilds.end() && --gi->second == 0) it->second.guilds.erase(gi);
        }
        if (--it->second.sessions == 0) local_users_.erase(it);
      }
    }
    delete s;
  }
  std::vector<std::uint64_t> message_kinds() const override { return {kSetKind, kPageRequestKind}; }
  void on_message(hearth::Host& host, const hearth_message_event& ev) override {
    auto* s = static_cast<SessionState*>(host.session_slot(ev.session_id));
    if (!s) return;
    if (ev.kind == kPageRequestKind) {
      std::uint64_t guild = 0, after = 0;
      if (!parse_page_request(ev.payload, &guild, &after)) {
        return refuse(host, ev.session_id,
                      "PRESENCE_PAGE payload must be [guild, after], two unsigned integers");
      }
      msgpack::sbuffer b;
      msgpack::pack(b, std::make_tuple(ev.session_id, after));
      host.publish(guild, kInternalPageKind, std::string_view(b.data(), b.size()));
      return;
    }
    std::uint8_t status = kOnline;
    std::string activity;
    if (!parse_status_bytes(ev.payload, &status, &activity)) {
      return refuse(host, ev.session_id,
                    "PRESENCE_SET payload must be [status 1..4, activity: a UTF-8 str]");
    }
    const std::uint64_t stamp = next_stamp();
    // Also remembered with the session's subscriptions: a guild that moves
    // is rebuilt with it (docs/presence.md).
    host.set_subscription_data(ev.session_id, pack_session_status(status, activity, stamp));
    const std::string internal = pack_internal(s->user, ev.session_id, status, activity, stamp);
    std::vector<std::uint64_t> guilds;
    {
      std::lock_guard lock(users_mu_);
      auto it = local_users_.find(s->user);
      if (it != local_users_.end()) {
        for (const auto& [g, n] : it->second.guilds) guilds.push_back(g);
      }
    }
    // The guilds of the user's sessions here at once; all of the user's
    // guilds, on every node, through the directory.
    for (std::uint64_t guild : guilds) host.publish(guild, kInternalKind, internal);
    tell_directory(host, s->user, status, activity, stamp);
    host.count("status_sets");
  }

  // ---- guild side ----

  void on_subscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    if (is_directory(ev.guild_id)) return;  // reserved: nobody's presence lives there
    GuildPresence* gp = guild(host, ev.guild_id);
    if (!gp) return;
    GuildPresence& g = *gp;
    UserPresence& u = g.users[ev.user_id];
    u.sessions[ev.session_id] = true;     // owed its own status (207)
    if (ev.subscription_data.size > 0) {  // a session that set a status before
      try {
        auto h = unpack_untrusted(ev.subscription_data.data, ev.subscription_data.size);
        auto [status, activity, stamp] =
            h.get().as<std::tuple<std::uint8_t, std::string, std::uint64_t>>();
        if (stamp > u.stamp && status >= kOnline && status <= kInvisible) {
          u.status = status;
          u.activity = activity;
          u.stamp = stamp;
        }
      } catch (const std::exception&) {
        host.warn("ignoring malformed subscription data");
      }
    }
    u.grace_timer = 0;  // back within the grace period: no flap
    g.members[ev.session_id] = Member{ev.session_node, ev.user_id};
    if (directory_guilds_ > 0 && !u.registered) {
      // A user new here who never set a status on this session may have one
      // from another device: shown once the directory answers, not online
      // first (docs/presence.md).
      u.registered = true;
      u.awaiting = directory_wait_ms_ > 0 && u.stamp == 0 && u.shown == kOffline;
      if (u.awaiting) {
        start_timer(host, ev.guild_id, ev.user_id, TimerKind::kAwait, directory_wait_ms_,
                    &u.await_timer);
      }
      host.publish(directory_of(ev.user_id), kDirectoryKind,
                   pack_directory_register(ev.guild_id,
                                           {Registration{ev.user_id, own_status(u), u.awaiting}}));
    }
    // Held: the directory's answer (or the wait's end) decides the arrival.
    if (!u.awaiting) recompute(host, ev.guild_id, ev.user_id);
    send_snapshot(host, ev.guild_id, ev.session_node, ev.session_id, ev.user_id, g, 0);
  }

  void on_unsubscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    if (is_directory(ev.guild_id)) return;
    auto* g = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    if (!g) return;
    g->members.erase(ev.session_id);
    auto it = g->users.find(ev.user_id);
    if (it == g->users.end()) return;
    UserPresence& u = it->second;
    u.sessions.erase(ev.session_id);
    if (u.sessions.empty()) {
      // Offline only after the grace period, so a quick reconnect shows nothing.
      start_timer(host, ev.guild_id, ev.user_id, TimerKind::kGrace, grace_ms_, &u.grace_timer);
    } else {
      recompute(host, ev.guild_id, ev.user_id);
    }
  }

  void on_timer(hearth::Host& host, const hearth_timer_event& ev) override {
    TimerTarget target{};
    {
      std::lock_guard lock(timers_mu_);
      auto it = timers_.find(ev.timer_id);
      if (it == timers_.end()) return;
      target = it->second;
      timers_.erase(it);
    }
    if (target.kind == TimerKind::kSweep) return sweep_directory(host, target.guild, ev.timer_id);
    auto* g = static_cast<GuildPresence*>(host.guild_slot(target.guild));
    if (!g) return;
    if (target.kind == TimerKind::kRefresh) {
      if (g->refresh_timer == ev.timer_id) refresh_registrations(host, target.guild, *g);
      return;
    }
    auto it = g->users.find(target.user);
    if (it == g->users.end()) return;
    UserPresence& u = it->second;
    std::uint64_t& timer = target.kind == TimerKind::kGrace   ? u.grace_timer
                           : target.kind == TimerKind::kFlush ? u.flush_timer
                                                              : u.await_timer;
    if (timer != ev.timer_id) return;  // came back, answered, or superseded
    timer = 0;
    if (target.kind == TimerKind::kAwait) u.awaiting = false;  // no answer: decide without
    recompute(host, target.guild, target.user);
  }

  PublishDecision on_publish(hearth::Host& host, const hearth_publish_event& ev) override {
    if (is_directory(ev.guild_id)) {
      if (!ev.from_plugin || ev.kind != kDirectoryKind) {
        return PublishDecision::drop("this guild id is reserved for the presence directory");
      }
      serve_directory(host, ev);
      return PublishDecision::drop("directory message");
    }
    const bool ours = ev.kind == kInternalKind || ev.kind == kInternalPageKind ||
                      ev.kind == kDirectoryKind || ev.kind == kApplyKind;
    if (ev.kind == kUpdateKind || (ours && !ev.from_plugin)) {
      return PublishDecision::drop("presence kinds are the presence plugin's own");
    }
    if (!ours) return PublishDecision::pass();
    if (ev.kind == kInternalPageKind) {
      serve_page(host, ev);
      return PublishDecision::drop("page served");
    }
    if (ev.kind == kDirectoryKind) return PublishDecision::drop("not a directory guild");
    if (ev.kind == kApplyKind) return apply_from_directory(host, ev);
    std::uint64_t user = 0, session = 0, stamp = 0;
    std::uint8_t status = kOnline;
    std::string activity;
    if (!parse_internal(ev.payload, &user, &session, &status, &activity, &stamp)) {
      return PublishDecision::drop("malformed presence update");
    }
    auto* gp = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    if (!gp && session != 0) gp = guild(host, ev.guild_id);
    if (!gp) return PublishDecision::drop("no presence in this guild here");
    GuildPresence& g = *gp;
    auto found = g.users.find(user);
    if (session != 0) {  // a status set; session 0 only asks to recompute
      if (found == g.users.end()) {
        // A set for a user with no session here yet (its SUBSCRIBE may be on
        // its way): kept for a grace period, then forgotten.
        found = g.users.try_emplace(user).first;
        start_timer(host, ev.guild_id, user, TimerKind::kGrace, grace_ms_,
                    &found->second.grace_timer);
      }
      UserPresence& u = found->second;
      // The newest set wins (stamps grow on each node; the directory brings
      // sets made on other nodes with theirs).
      if (stamp <= u.stamp) return PublishDecision::drop("an older set");
      u.status = status;
      u.activity = activity;
      u.stamp = stamp;
    }
    if (found == g.users.end()) return PublishDecision::drop("no such user");
    return decide(host, ev.guild_id, g, found);
  }

  void on_guild_free(std::uint64_t, void* slot) override {
    delete static_cast<GuildPresence*>(slot);
  }

 private:
  // Decided here, as the guild sequences the event, so updates reach
  // everyone in the order they were decided.
  PublishDecision decide(hearth::Host& host, std::uint64_t guild_id, GuildPresence& g,
                         std::map<std::uint64_t, UserPresence>::iterator found) {
    const std::uint64_t user = found->first;
    UserPresence& u = found->second;
    if (u.awaiting) return PublishDecision::drop("waiting for the user's directory");
    const bool waiting = u.grace_timer != 0;  // offline only when the grace period ends
    // The user's own status (207): told to their sessions here; nobody to
    // tell while none is subscribed, so it is kept as last told.
    const bool present = !u.sessions.empty();
    const std::uint8_t own = present ? u.status : u.self;
    const std::string own_activity = present ? u.activity : u.self_activity;
    const std::uint8_t shown = !present || own == kInvisible ? std::uint8_t{kOffline} : own;
    const std::string shown_activity = shown == kOffline ? std::string() : own_activity;
    const bool self_changed = present && (own != u.self || own_activity != u.self_activity);
    const bool shown_changed = !waiting && (shown != u.shown || shown_activity != u.shown_activity);
    if (!self_changed && !shown_changed) {
      tell_self(host, guild_id, g, u, false);  // new sessions: the status last told
      if (!waiting && u.flush_timer != 0) {    // a held change undone before it was shown
        folded_.fetch_add(1, std::memory_order_relaxed);
        u.flush_timer = 0;
      }
      if (!waiting && u.flush_timer == 0 && !present && u.shown == kOffline) {
        forget(host, guild_id, g, found);
      }
      return PublishDecision::drop("no visible change");
    }
    // The rate limit: at most one change per user per min_interval_ms; a
    // change within it is held, and the latest state goes out when it ends.
    const std::uint64_t now = steady_ms();
    if (u.announced_ms != 0 && now - u.announced_ms < min_interval_ms_) {
      tell_self(host, guild_id, g, u, false);
      host.count("rate_limited");
      if (u.flush_timer != 0) {
        folded_.fetch_add(1, std::memory_order_relaxed);  // the held change is superseded
      } else {
        start_timer(host, guild_id, user, TimerKind::kFlush,
                    min_interval_ms_ - (now - u.announced_ms), &u.flush_timer);
      }
      return PublishDecision::drop("held by the presence rate limit");
    }
    u.flush_timer = 0;
    u.announced_ms = now;
    if (self_changed) {
      u.self = own;
      u.self_activity = own_activity;
    }
    tell_self(host, guild_id, g, u, self_changed);
    if (!shown_changed) return PublishDecision::drop("only the user's own status changed");
    stream_change(user, guild_id, u.shown, shown, shown_activity);
    g.online -= u.shown != kOffline;
    g.online += shown != kOffline;
    u.shown = shown;
    u.shown_activity = shown_activity;
    ++g.version;
    host.count("updates");
    const std::string update = pack_update(user, shown, shown_activity, g.version);
    if (!present && shown == kOffline) forget(host, guild_id, g, found);
    PublishDecision d = PublishDecision::replace(update, kUpdateKind);
    d.exclude_user = user;  // every *other* session of the guild is told
    return d;
  }

  // 207 [guild, status, activity] (u.self) to the user's sessions here: all
  // of them, or only those that have not been told yet.
  void tell_self(hearth::Host& host, std::uint64_t guild_id, const GuildPresence& g,
                 UserPresence& u, bool all) {
    std::string payload;
    for (auto& [session, owed] : u.sessions) {
      if (!all && !owed) continue;
      owed = false;
      auto m = g.members.find(session);
      if (m == g.members.end()) continue;
      if (payload.empty()) {
        msgpack::sbuffer b;
        msgpack::pack(b, std::make_tuple(guild_id, u.self, u.self_activity));
        payload.assign(b.data(), b.size());
      }
      host.send_to_member(m->second.node.c_str(), session, kSelfKind, payload);
    }
  }

  // A set time: wall-clock microseconds, strictly increasing on this node, so
  // that sets on one node keep their order and sets on several nodes are
  // ordered by their clocks (docs/presence.md).
  std::uint64_t next_stamp() {
    const std::uint64_t now = wall_micros();
    std::uint64_t last = last_stamp_.load();
    std::uint64_t next;
    do {
      next = std::max(now, last + 1);
    } while (!last_stamp_.compare_exchange_weak(last, next));
    return next;
  }

  bool is_directory(std::uint64_t guild) const {
    return directory_guilds_ > 0 && guild >= directory_base_ &&
           guild - directory_base_ < directory_guilds_;
  }
  std::uint64_t directory_of(std::uint64_t user) const {
    return directory_base_ + user % directory_guilds_;
  }

  void tell_directory(hearth::Host& host, std::uint64_t user, std::uint8_t status,
                      const std::string& activity, std::uint64_t stamp) {
    if (directory_guilds_ == 0) return;
    host.publish(directory_of(user), kDirectoryKind,
                 pack_directory_set(user, StampedStatus{status, activity, stamp}));
  }

  void start_timer(hearth::Host& host, std::uint64_t guild, std::uint64_t user, TimerKind kind,
                   std::uint64_t delay_ms, std::uint64_t* slot) {
    *slot = host.set_timer(delay_ms, 0);
    std::lock_guard lock(timers_mu_);
    timers_[*slot] = {guild, user, kind};
  }

  // The guild's presence, created on first use; null when the guild does not
  // live on this shard (yet): the host keeps slots of existing guilds only.
  GuildPresence* guild(hearth::Host& host, std::uint64_t id) {
    auto* g = static_cast<GuildPresence*>(host.guild_slot(id));
    if (g) return g;
    g = new GuildPresence;
    host.set_guild_slot(id, g);
    if (host.guild_slot(id) != g) {
      delete g;
      return nullptr;
    }
    if (directory_guilds_ > 0) {
      start_timer(host, id, 0, TimerKind::kRefresh, refresh_ms_, &g->refresh_timer);
    }
    return g;
  }

  // What the user's sessions here set last, as the directory compares it.
  static StampedStatus own_status(const UserPresence& u) {
    return StampedStatus{u.stamp == 0 ? std::uint8_t{kOnline} : u.status, u.activity, u.stamp};
  }

  // The user is gone from this guild: their directory stops sending here.
  void forget(hearth::Host& host, std::uint64_t guild_id, GuildPresence& g,
              std::map<std::uint64_t, UserPresence>::iterator found) {
    if (found->second.registered) {
      host.publish(directory_of(found->first), kDirectoryKind,
                   pack_directory_unregister(guild_id, found->first));
    }
    g.users.erase(found);
  }

  // A status from the user's directory (kind 209): the newest set wins, and a
  // user held for the directory's answer is decided now.
  PublishDecision apply_from_directory(hearth::Host& host, const hearth_publish_event& ev) {
    Apply a;
    if (!parse_apply(ev.payload.data, ev.payload.size, &a)) {
      return PublishDecision::drop("malformed directory message");
    }
    auto* g = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    // Not here (moved, or ended): the guild's new owner registers for itself,
    // and the directory forgets this registration if nobody refreshes it.
    if (!g) return PublishDecision::drop("no presence in this guild here");
    auto found = g->users.find(a.user);
    if (found == g->users.end() || !found->second.registered) {
      // The directory still counts this guild for the user: tell it otherwise.
      if (directory_guilds_ > 0) {
        host.publish(directory_of(a.user), kDirectoryKind,
                     pack_directory_unregister(ev.guild_id, a.user));
      }
      return PublishDecision::drop("the user is not here");
    }
    UserPresence& u = found->second;
    bool changed = false;
    if (a.status.stamp > u.stamp && a.status.status >= kOnline && a.status.status <= kInvisible) {
      u.status = a.status.status;
      u.activity = cut_utf8(a.status.activity, kMaxActivityBytes);
      u.stamp = a.status.stamp;
      changed = true;
    }
    if (u.awaiting) {
      u.awaiting = false;
      u.await_timer = 0;
      changed = true;
    }
    if (!changed) return PublishDecision::drop("already known");
    return decide(host, ev.guild_id, *g, found);
  }

  // Every refresh period each guild registers its users again: a directory
  // that moved or restarted is rebuilt within one period, and a set it
  // missed reaches every guild (docs/presence.md).
  void refresh_registrations(hearth::Host& host, std::uint64_t guild_id, GuildPresence& g) {
    std::map<std::uint64_t, std::vector<Registration>> by_directory;
    for (const auto& [user, u] : g.users) {
      if (u.registered) by_directory[directory_of(user)].push_back({user, own_status(u), false});
    }
    for (const auto& [dir, users] : by_directory) {
      host.publish(dir, kDirectoryKind, pack_directory_register(guild_id, users));
    }
    host.count("directory_refreshes");
    start_timer(host, guild_id, 0, TimerKind::kRefresh, refresh_ms_, &g.refresh_timer);
  }

  // A message to a directory guild, on the shard owning its id. The state is
  // the plugin's own (the guild never exists in the node: every message to it
  // is dropped), kept per directory guild id.
  void serve_directory(hearth::Host& host, const hearth_publish_event& ev) {
    std::vector<Apply> out;
    bool arm = false;
    {
      std::lock_guard lock(directories_mu_);
      auto& d = directories_[ev.guild_id];
      if (!d) d = std::make_unique<DirectoryGuild>();
      if (!apply_directory_message(d->users, ev.payload.data, ev.payload.size, steady_ms(), &out)) {
        host.warn("ignoring a malformed directory message");
      }
      arm = d->sweep_timer == 0 && !d->users.empty();
      if (arm) d->sweep_timer = 1;  // armed below, outside the lock
    }
    if (arm) {
      std::uint64_t id = 0;
      start_timer(host, ev.guild_id, 0, TimerKind::kSweep, refresh_ms_, &id);
      std::lock_guard lock(directories_mu_);
      directories_[ev.guild_id]->sweep_timer = id;
    }
    for (const Apply& a : out) host.publish(a.guild, kApplyKind, pack_apply(a));
    host.count("directory_messages");
  }

  void sweep_directory(hearth::Host& host, std::uint64_t dir, std::uint64_t timer_id) {
    bool again = false;
    {
      std::lock_guard lock(directories_mu_);
      auto it = directories_.find(dir);
      if (it == directories_.end() || it->second->sweep_timer != timer_id) return;
      const std::uint64_t now = steady_ms();
      const std::uint64_t keep = kDirectoryExpiryPeriods * refresh_ms_;
      it->second->users.expire(now > keep ? now - keep : 0);
      again = !it->second->users.empty();
      it->second->sweep_timer = again ? 1 : 0;
    }
    if (!again) return;
    std::uint64_t id = 0;
    start_timer(host, dir, 0, TimerKind::kSweep, refresh_ms_, &id);
    std::lock_guard lock(directories_mu_);
    directories_[dir]->sweep_timer = id;
  }

  static std::string pack_internal(std::uint64_t user, std::uint64_t session, std::uint8_t status,
                                   const std::string& activity, std::uint64_t when) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(user, session, status, activity, when));
    return std::string(b.data(), b.size());
  }

  // Asks the guild to decide the user's presence when it sequences this
  // internal event (see on_publish): decisions and updates stay in one order.
  static void recompute(hearth::Host& host, std::uint64_t guild, std::uint64_t user) {
    host.publish(guild, kInternalKind, pack_internal(user, 0, kOnline, std::string(), 0));
  }

  // Members shown online with a user id above `after`, in user id order,
  // without the requester's own user (its own status comes as 207). Up to
  // snapshot_full_limit online: all of them; above: snapshot_page of them.
  void send_snapshot(hearth::Host& host, std::uint64_t guild, const std::string& node,
                     std::uint64_t session, std::uint64_t requester, const GuildPresence& g,
                     std::uint64_t after) {
    const std::size_t limit =
        g.online <= full_limit_ ? std::numeric_limits<std::size_t>::max() : page_size_;
    std::vector<std::tuple<std::uint64_t, std::uint8_t, std::string>> page;
    bool more = false;
    for (auto it = g.users.upper_bound(after); it != g.users.end(); ++it) {
      if (it->second.shown == kOffline || it->first == requester) continue;
      if (page.size() >= limit) {
        more = true;
        break;
      }
      page.emplace_back(it->first, it->second.shown, it->second.shown_activity);
    }
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(guild, g.online, after, more, page, g.version));
    host.send_to_member(node.c_str(), session, kSnapshotKind, std::string_view(b.data(), b.size()));
  }

  void serve_page(hearth::Host& host, const hearth_publish_event& ev) {
    std::uint64_t session = 0, after = 0;
    try {
      auto h = unpack_untrusted(ev.payload.data, ev.payload.size);
      std::tie(session, after) = h.get().as<std::tuple<std::uint64_t, std::uint64_t>>();
    } catch (const std::exception&) {
      return;
    }
    auto* g = static_cast<GuildPresence*>(host.guild_slot(ev.guild_id));
    if (!g) return;
    auto m = g->members.find(session);
    if (m == g->members.end()) return;  // only members may read the guild's presence
    send_snapshot(host, ev.guild_id, m->second.node, session, m->second.user, *g, after);
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
  std::uint64_t min_interval_ms_ = 1000;
  std::uint64_t directory_guilds_ = 64;  // 0: no directory, status per session node
  std::uint64_t directory_base_ = 0xFFFFFFFF00000000ull;
  std::uint64_t refresh_ms_ = 10000;
  // How long a guild holds a newly arrived user with no status set on the
  // arriving session for their directory's answer (0: no wait).
  std::uint64_t directory_wait_ms_ = 1000;
  std::atomic<std::uint64_t> last_stamp_{0};
  std::mutex directories_mu_;  // directory guilds, each on the shard owning its id
  std::unordered_map<std::uint64_t, std::unique_ptr<DirectoryGuild>> directories_;
  std::atomic<std::uint64_t> folded_{0};
  std::mutex stream_mu_;
  std::unique_ptr<zmq::context_t> stream_ctx_;
  std::unique_ptr<zmq::socket_t> stream_;
  std::mutex timers_mu_;  // timers are set and fired on guild shards, several at once
  std::unordered_map<std::uint64_t, TimerTarget> timers_;
  std::mutex users_mu_;  // session side, all shards
  std::unordered_map<std::uint64_t, LocalUser> local_users_;
};

}  // namespace

HEARTH_PLUGIN(Presence, "presence", "who is online, per user across guilds, with a grace period")
