// Shard, session side: client messages, sessions, subscriptions, delivery.
#include <spdlog/spdlog.h>

#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

// ---------------------------------------------------------------- client side

void Shard::send_client_error(const std::string& peer, Code code, const std::string& text,
                              std::uint64_t ref) {
  ++shared_.stats.malformed;
  wire::HeaderWriter w(Type::kError, 3);
  w.u64(static_cast<std::uint64_t>(code)).str(text).u64(ref);
  send_header(kToClient, peer, w);
}

void Shard::on_client(Task& task) {
  const std::string& peer = task.peer;
  auto conn_it = connections_.find(peer);
  Connection* conn = conn_it == connections_.end() ? nullptr : &conn_it->second;
  if (conn) conn->last_seen = Clock::now();

  wire::HeaderReader r(task.frames[0].data(), task.frames[0].size());
  if (!r.ok()) {
    send_client_error(peer, r.error().code, r.error().text, 0);
    return;
  }
  const auto type = static_cast<Type>(r.type());
  if (type != Type::kIdentify && type != Type::kHeartbeat && type != Type::kLeave &&
      type != Type::kPluginMessage) {
    return send_client_error(
        peer, Code::kUnknownType,
        "a session node accepts IDENTIFY, HEARTBEAT, LEAVE and PLUGIN_MESSAGE; got type " +
            std::to_string(r.type()),
        0);
  }
  const std::size_t frames_expected = type == Type::kPluginMessage ? 2 : 1;
  if (task.frames.size() != frames_expected) {
    send_client_error(peer, Code::kMalformed,
                      std::string(wire::type_name(r.type())) + " takes " +
                          std::to_string(frames_expected) + " frame(s); got " +
                          std::to_string(task.frames.size()),
                      0);
    return;
  }
  switch (static_cast<Type>(r.type())) {
    case Type::kIdentify:
      on_identify(conn, peer, r);
      return;
    case Type::kHeartbeat: {
      const std::uint64_t nonce = r.has_more() ? r.u64("nonce") : 0;
      if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, 0);
      wire::HeaderWriter w(Type::kHeartbeatAck, 1);
      w.u64(nonce);
      send_header(kToClient, peer, w);
      return;
    }
    case Type::kLeave:
      on_leave(peer, r);
      return;
    case Type::kPluginMessage:
      on_plugin_message(peer, r, task);
      return;
    default:
      return;
  }
}

Session* Shard::session_of(const std::string& peer, std::uint64_t sid) {
  Session* s = sessions_.find(sid);
  if (s && s->connection->id == peer) return s;
  send_client_error(peer, Code::kUnknownSession,
                    "session " + std::to_string(sid) + " is not live on this connection", sid);
  return nullptr;
}

void Shard::on_plugin_message(const std::string& peer, wire::HeaderReader& r, Task& task) {
  const std::uint64_t sid = r.u64("session_id");
  const std::uint64_t kind = r.u64("kind");
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, 0);
  Session* s = session_of(peer, sid);
  if (!s) return;
  hearth_message_event ev{};
  ev.struct_size = sizeof(ev);
  ev.session_id = sid;
  ev.user_id = s->user;
  ev.kind = kind;
  ev.payload = {task.frames[1].data(), task.frames[1].size()};
  if (!shared_.plugins.message(*this, ev)) {
    send_client_error(peer, Code::kUnknownType,
                      "no plugin on this node handles message kind " + std::to_string(kind), sid);
  }
}

void Shard::on_identify(Connection* conn, const std::string& peer, wire::HeaderReader& r) {
  const NodeConfig& cfg = shared_.config;
  const std::uint64_t request = r.u64("request_id");
  const std::uint64_t user = r.u64("user_id");
  const std::string_view token = r.str("token");
  std::vector<std::uint64_t> guilds;
  r.u64_array("guilds", cfg.max_guilds_per_session, guilds);
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, request);
  if (!cfg.session_role) {
    return send_client_error(peer, Code::kUnknownType, "this node does not host sessions", request);
  }
  if (conn && conn->sessions.size() >= cfg.max_sessions_per_connection) {
    return send_client_error(peer, Code::kLimit,
                             "a connection may carry at most " +
                                 std::to_string(cfg.max_sessions_per_connection) + " sessions",
                             request);
  }
  if (auto refusal = shared_.tokens.check(user, token)) {
    ++shared_.stats.auth_failures;
    return send_client_error(peer, Code::kAuthFailed, *refusal, request);
  }
  if (!conn) {
    conn = &connections_[peer];
    conn->id = peer;
    conn->last_seen = Clock::now();
    ++shared_.stats.connections;
  }
  Session* created = sessions_.create();
  if (!created) {
    return send_client_error(peer, Code::kLimit, "this shard holds its maximum of sessions",
                             request);
  }
  Session& s = *created;
  const std::uint64_t sid = s.id;
  s.user = user;
  s.connection = conn;
  conn->sessions.push_back(sid);
  ++shared_.stats.sessions;
  if (!shared_.plugins.empty()) {
    s.plugin_slots.assign(shared_.plugins.size(), nullptr);
    hearth_identify_event ev{};
    ev.struct_size = sizeof(ev);
    ev.session_id = sid;
    ev.user_id = user;
    ev.token = {token.data(), token.size()};
    ev.guilds = guilds.data();
    ev.guild_count = guilds.size();
    if (auto reason = shared_.plugins.identify(*this, ev)) {
      // The session never existed for anyone else: undo it quietly.
      Session* rejected = sessions_.find(sid);
      if (rejected) shared_.plugins.session_freed(sid, rejected->plugin_slots.data());
      conn->sessions.pop_back();
      sessions_.erase(sid);
      --shared_.stats.sessions;
      ++shared_.stats.auth_failures;
      return send_client_error(peer, Code::kRejected, *reason, request);
    }
  }

  wire::HeaderWriter w(Type::kReady, 3);
  w.u64(request).u64(sid).u64(static_cast<std::uint64_t>(cfg.client_heartbeat.count()));
  send_header(kToClient, peer, w);

  std::sort(guilds.begin(), guilds.end());
  guilds.erase(std::unique(guilds.begin(), guilds.end()), guilds.end());
  s.guilds.reserve(guilds.size());
  for (std::uint64_t g : guilds) s.guilds.emplace_back(g, GuildLink{});
  for (auto& [g, link] : s.guilds) try_subscribe(s, g, link);
}

void Shard::on_leave(const std::string& peer, wire::HeaderReader& r) {
  const std::uint64_t sid = r.u64("session_id");
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, 0);
  Session* s = session_of(peer, sid);
  if (!s) return;
  close_session(sid, Code::kClosedByClient, "closed by the client", true, false);
  auto conn = connections_.find(peer);
  if (conn != connections_.end() && conn->second.sessions.empty()) {
    connections_.erase(conn);
    --shared_.stats.connections;
  }
}

void Shard::close_session(std::uint64_t sid, Code code, const std::string& reason, bool tell_client,
                          bool goodbye) {
  Session* found = sessions_.find(sid);
  if (!found) return;
  Session& s = *found;
  for (auto& [guild, link] : s.guilds) {
    if (link.state == State::kPending) release_permit(link);
    if (link.state == State::kPending || link.state == State::kActive) {
      if (live_nodes_.count(link.owner)) {
        unsubscribe_at(link.owner, guild, sid);
      }
    }
  }
  Connection& conn = *s.connection;
  // Events already queued for this session go out before it is closed.
  if (!goodbye && !conn.batch.empty()) flush(conn);
  auto& list = conn.sessions;
  list.erase(std::remove(list.begin(), list.end(), sid), list.end());
  if (tell_client) {
    wire::HeaderWriter w(Type::kSessionClosed, 3);
    w.u64(sid).u64(static_cast<std::uint64_t>(code)).str(reason);
    send_header(goodbye ? kGoodbye : kToClient, conn.id, w);
  }
  if (!shared_.plugins.empty()) {
    hearth_session_event ev{sizeof(hearth_session_event), sid, s.user,
                            static_cast<std::uint32_t>(code)};
    shared_.plugins.session_closed(*this, ev);
    shared_.plugins.session_freed(sid, s.plugin_slots.data());
  }
  sessions_.erase(sid);
  --shared_.stats.sessions;
}

void Shard::close_connection(const std::string& peer, Code code, const std::string& reason,
                             bool tell_client, bool goodbye) {
  auto it = connections_.find(peer);
  if (it == connections_.end()) return;
  if (goodbye) it->second.batch.clear();
  const std::vector<std::uint64_t> sids = it->second.sessions;
  for (std::uint64_t sid : sids) close_session(sid, code, reason, tell_client, goodbye);
  it = connections_.find(peer);
  if (it != connections_.end()) {
    dirty_.erase(peer);
    connections_.erase(it);
    --shared_.stats.connections;
  }
}

void Shard::release_permit(GuildLink& link) {
  shared_.limiter.for_node(link.owner).release();
}

void Shard::schedule_retry(Session& s, std::uint64_t guild, GuildLink& link) {
  link.state = State::kWaiting;
  link.due = Clock::now() + backoff_.delay(link.attempts++);
  timers_.emplace(link.due, std::make_pair(s.id, guild));
  ++shared_.stats.subscribe_retries;
}

void Shard::try_subscribe(Session& s, std::uint64_t guild, GuildLink& link) {
  const Ring& ring = ring_.get();
  const int owner = ring.find(guild);
  if (owner == Ring::kNone) return schedule_retry(s, guild, link);
  const std::string& name = ring.node_name(owner);
  if (!shared_.limiter.for_node(name).try_acquire()) {
    ++shared_.stats.permit_denied;
    return schedule_retry(s, guild, link);
  }
  link.state = State::kPending;
  link.owner = name;
  link.owner_id = node_id(name);
  auto inc = live_nodes_.find(name);
  link.owner_incarnation = inc == live_nodes_.end() ? 0 : inc->second;
  link.due = Clock::now() + shared_.config.subscribe_timeout;
  timers_.emplace(link.due, std::make_pair(s.id, guild));
  wire::HeaderWriter w(u32(internal::Type::kSubscribe), 4);
  w.u64(guild).u64(s.id).u64(s.user);
  w.array(s.subscription_data.size());  // each plugin's bytes, by plugin index
  for (const std::string& data : s.subscription_data) w.bin(data);
  send_header(kToBroker, name, w);
}

void Shard::on_subscribe_reply(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t sid = r.u64("session");
  const auto code = static_cast<Code>(r.u64("code"));
  const std::uint64_t guild_seq = r.u64("guild_seq");
  if (!r.ok()) return;
  Session* found = sessions_.find(sid);
  GuildLink* link = found ? found->link(guild) : nullptr;
  if (!link || link->state != State::kPending || link->owner != from) {
    // A late answer: the session left or moved on. Undo a membership we no longer want.
    const bool wanted = link && link->state == State::kActive && link->owner == from;
    if (code == Code::kOk && !wanted) {
      unsubscribe_at(from, guild, sid);
    }
    return;
  }
  release_permit(*link);
  Session& s = *found;
  if (code != Code::kOk && !is_final(code)) return schedule_retry(s, guild, *link);
  link->state = code == Code::kOk ? State::kActive : State::kFailed;
  link->attempts = 0;
  wire::HeaderWriter w(Type::kSubscribed, 4);
  w.u64(sid).u64(guild).u64(static_cast<std::uint64_t>(code)).u64(guild_seq);
  // Queued events of other guilds go first, so the client sees SUBSCRIBED in order.
  if (!s.connection->batch.empty()) flush(*s.connection);
  send_header(kToClient, s.connection->id, w);
}

void Shard::on_deliver(Task& task) {
  const std::uint32_t max_batch = shared_.config.max_batch;
  const std::uint64_t stamp = ++delivery_stamp_;
  const std::uint32_t source = node_id(task.peer);
  std::uint64_t delivered = 0;
  std::uint64_t stale = 0;
  for (std::uint64_t sid : task.sessions) {
    Session* s = sessions_.find(sid);
    GuildLink* link = s ? s->link(task.guild) : nullptr;
    if (!link || link->state != State::kActive || link->owner_id != source) {
      ++stale;  // left, moved, or not yet confirmed
      continue;
    }
    if (task.exclude_user != 0 && s->user == task.exclude_user) continue;
    Connection& conn = *s->connection;
    conn.batch.add(sid, ++s->seq, task.guild, task.event_kind, task.guild_seq, task.payload, stamp);
    ++delivered;
    if (conn.batch.size() >= max_batch) {
      flush(conn);
    } else if (conn.batch.size() == 1) {
      dirty_.insert(conn.id);
    }
  }
  shared_.stats.deliveries += delivered;
  if (stale) shared_.stats.stale_deliveries += stale;
}

void Shard::flush(Connection& conn) {
  if (conn.batch.empty()) return;
  Frames f;
  f.reserve(5);
  f.push_back(frame_of(std::string_view("C", 1)));
  f.push_back(frame_of(conn.id));
  conn.batch.encode_into(f);
  ++shared_.stats.client_messages;
  send(f);
}

void Shard::flush_dirty() {
  for (const std::string& id : dirty_) {
    auto it = connections_.find(id);
    if (it != connections_.end()) flush(it->second);
  }
  dirty_.clear();
}

void Shard::sweep_connections(Clock::time_point now) {
  std::vector<std::string> silent;
  for (auto& [id, conn] : connections_) {
    if (now - conn.last_seen > shared_.config.client_timeout) silent.push_back(id);
  }
  for (const std::string& id : silent) {
    ++shared_.stats.heartbeat_timeouts;
    close_connection(id, Code::kHeartbeatTimeout, "no HEARTBEAT within the timeout", true, false);
  }
}

void Shard::relink_after_ring_change() {
  const Ring& ring = ring_.get();
  const auto now = Clock::now();
  sessions_.for_each([&](Session& s) {
    const std::uint64_t sid = s.id;
    for (auto& [guild, link] : s.guilds) {
      if (link.state != State::kActive && link.state != State::kPending) continue;
      const int owner = ring.find(guild);
      auto live = live_nodes_.find(link.owner);
      const bool owner_same = owner != Ring::kNone && ring.node_name(owner) == link.owner &&
                              live != live_nodes_.end() && live->second == link.owner_incarnation;
      if (owner_same) continue;
      if (link.state == State::kPending) release_permit(link);
      if (live != live_nodes_.end()) {
        unsubscribe_at(link.owner, guild, sid);
      }
      link.state = State::kWaiting;
      link.attempts = 0;
      link.due = now;
      timers_.emplace(now, std::make_pair(sid, guild));
    }
  });
}

}  // namespace hearth
