// Shard, session side: client messages, sessions and their connections,
// subscriptions, delivery. Streams and RESUME are in shard_streams.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

namespace {

void sort_unique(std::vector<std::uint64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

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
  wire::HeaderReader r(task.frames[0].data(), task.frames[0].size());
  if (!r.ok()) {
    send_client_error(peer, r.error().code, r.error().text, 0);
    return;
  }
  const auto type = static_cast<Type>(r.type());
  switch (type) {
    case Type::kIdentify:
    case Type::kHeartbeat:
    case Type::kLeave:
    case Type::kPluginMessage:
    case Type::kSubscribe:
    case Type::kUnsubscribe:
    case Type::kResume:
      break;
    default:
      return send_client_error(peer, Code::kUnknownType,
                               "a session node accepts IDENTIFY, HEARTBEAT, LEAVE, PLUGIN_MESSAGE, "
                               "SUBSCRIBE, UNSUBSCRIBE and RESUME; got type " +
                                   std::to_string(r.type()),
                               0);
  }
  const std::size_t frames_expected = type == Type::kPluginMessage ? 2 : 1;
  if (task.frames.size() != frames_expected) {
    // The ref is the message's first field (request id or session id), when readable.
    const std::uint64_t ref = type == Type::kHeartbeat ? 0 : r.peek_u64(0);
    send_client_error(peer, Code::kMalformed,
                      std::string(wire::type_name(r.type())) + " takes " +
                          std::to_string(frames_expected) + " frame(s); got " +
                          std::to_string(task.frames.size()),
                      ref);
    return;
  }
  switch (type) {
    case Type::kIdentify:
      return on_identify(peer, task.address, r);
    case Type::kHeartbeat:
      // The hub answers every well-formed HEARTBEAT (it alone knows all the
      // connection's sessions); one that reaches a shard has a bad nonce.
      if (r.has_more()) r.u64("nonce");
      if (!r.ok()) send_client_error(peer, r.error().code, r.error().text, 0);
      return;
    case Type::kLeave:
      return on_leave(peer, r);
    case Type::kPluginMessage:
      return on_plugin_message(peer, r, task);
    case Type::kSubscribe:
      return on_subscribe_request(peer, r);
    case Type::kUnsubscribe:
      return on_unsubscribe_request(peer, r);
    case Type::kResume:
      return on_resume(peer, r);
    default:
      return;
  }
}

Session* Shard::session_of(const std::string& peer, std::uint64_t sid, std::uint64_t ref) {
  Session* s = sessions_.find(sid);
  if (s && s->connection && s->connection->id == peer) return s;
  send_client_error(peer, Code::kUnknownSession,
                    "session " + std::to_string(sid) +
                        " is not live on this connection (RESUME it if it was yours)",
                    ref);
  return nullptr;
}

void Shard::on_plugin_message(const std::string& peer, wire::HeaderReader& r, Task& task) {
  const std::uint64_t sid = r.u64("session_id");
  const std::uint64_t kind = r.u64("kind");
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, r.peek_u64(0));
  Session* s = session_of(peer, sid, sid);
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

void Shard::identify_failed(const std::string& peer, const std::string& address, Code code,
                            const std::string& text, std::uint64_t request) {
  ++shared_.stats.auth_failures;
  if (!shared_.identify_throttle.failed(peer, address, Clock::now())) {
    return send_client_error(peer, code, text, request);
  }
  send_client_error(peer, code,
                    text +
                        "; too many failed IDENTIFYs: this connection is closed (reconnect; "
                        "its sessions are detached and may be RESUMEd)",
                    request);
  detach_connection(peer);
}

void Shard::on_identify(const std::string& peer, const std::string& address,
                        wire::HeaderReader& r) {
  const NodeConfig& cfg = shared_.config;
  const std::uint64_t request = r.u64("request_id");
  const std::uint64_t user = r.u64("user_id");
  const std::string_view token = r.str("token");
  std::vector<std::uint64_t> guilds;
  r.u64_array("guilds", wire::kMaxArrayItems, guilds);
  std::string presence;  // optional; for plugins (docs/presence.md)
  if (r.has_more()) r.raw_array("presence", wire::kMaxStringBytes, presence);
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, r.peek_u64(0));
  if (!cfg.session_role) {
    return send_client_error(peer, Code::kUnknownType, "this node does not host sessions", request);
  }
  if (draining_) {
    return send_client_error(peer, Code::kShuttingDown,
                             "this node is draining: IDENTIFY on another node", request);
  }
  // Duplicates are ignored and do not count toward the limit.
  sort_unique(guilds);
  if (guilds.size() > cfg.max_guilds_per_session) {
    return send_client_error(peer, Code::kTooLarge,
                             "a session may follow at most " +
                                 std::to_string(cfg.max_guilds_per_session) + " guilds; got " +
                                 std::to_string(guilds.size()),
                             request);
  }
  auto existing = connections_.find(peer);
  if (existing != connections_.end() &&
      existing->second.sessions.size() >= cfg.max_sessions_per_connection) {
    return send_client_error(peer, Code::kLimit,
                             "a connection may carry at most " +
                                 std::to_string(cfg.max_sessions_per_connection) + " sessions",
                             request);
  }
  if (shared_.identify_throttle.address_blocked(address, Clock::now())) {
    return identify_failed(peer, address, Code::kAuthFailed,
                           "too many failed IDENTIFYs from this address; retry later", request);
  }
  GuildGrant grant;
  if (auto refusal = shared_.tokens.check(user, token, &grant)) {
    return identify_failed(peer, address, Code::kAuthFailed, *refusal, request);
  }
  Session* created = sessions_.create();
  if (!created) {
    return send_client_error(peer, Code::kLimit, "this shard holds its maximum of sessions",
                             request);
  }
  Session& s = *created;
  const std::uint64_t sid = s.id;
  s.user = user;
  if (!grant.all) s.grant = std::make_shared<const GuildGrant>(std::move(grant));
  s.resume_token = tokens_.next();
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
    ev.presence = {presence.data(), presence.size()};
    if (auto reason = shared_.plugins.identify(*this, ev)) {
      // The session never existed for anyone else: undo it quietly.
      Session* rejected = sessions_.find(sid);
      if (rejected) shared_.plugins.session_freed(sid, rejected->plugin_slots.data());
      sessions_.erase(sid);
      --shared_.stats.sessions;
      ++shared_.stats.auth_failures;
      return send_client_error(peer, Code::kRejected, *reason, request);
    }
  }
  attach(s, connection_for(peer));

  wire::HeaderWriter w(Type::kReady, 5);
  w.u64(request).u64(sid).u64(static_cast<std::uint64_t>(cfg.client_heartbeat.count()));
  w.bin(std::string_view(reinterpret_cast<const char*>(s.resume_token.data()),
                         s.resume_token.size()));
  w.u64(static_cast<std::uint64_t>(cfg.resume_grace.count()));
  send_header(kToClient, peer, w);

  follow(s, guilds, request);
}

void Shard::refuse_guild(Session& s, std::uint64_t guild, std::uint64_t request) {
  StreamRecord item;
  item.type = static_cast<std::uint32_t>(Type::kSubscribed);
  item.guild = guild;
  item.code = static_cast<std::uint16_t>(Code::kRejected);
  item.kind_or_request = request;
  item.bytes = "the session's token does not grant guild " + std::to_string(guild);
  emit_control(s, item);
}

void Shard::follow(Session& s, const std::vector<std::uint64_t>& guilds, std::uint64_t request) {
  const std::size_t first_new = s.guilds.size();
  s.guilds.reserve(first_new + guilds.size());
  const std::uint64_t sid = s.id;
  for (std::uint64_t g : guilds) {
    if (s.grant && !s.grant->allows(g)) {
      refuse_guild(s, g, request);
      // A detached session whose buffer overflowed is closed by emit_control.
      if (!sessions_.find(sid)) return;
      continue;
    }
    GuildLink link;
    link.request_id = request;
    s.guilds.emplace_back(g, std::move(link));
  }
  for (std::size_t i = first_new; i < s.guilds.size(); ++i) {
    try_subscribe(s, s.guilds[i].first, s.guilds[i].second);
  }
}

Session* Shard::read_guild_request(const std::string& peer, wire::HeaderReader& r,
                                   std::uint64_t* request, std::vector<std::uint64_t>& guilds) {
  *request = r.u64("request_id");
  const std::uint64_t sid = r.u64("session_id");
  r.u64_array("guilds", wire::kMaxArrayItems, guilds);
  if (!r.ok()) {
    send_client_error(peer, r.error().code, r.error().text, r.peek_u64(0));
    return nullptr;
  }
  Session* s = session_of(peer, sid, *request);
  sort_unique(guilds);
  return s;
}

void Shard::on_subscribe_request(const std::string& peer, wire::HeaderReader& r) {
  std::uint64_t request = 0;
  std::vector<std::uint64_t> guilds;
  Session* s = read_guild_request(peer, r, &request, guilds);
  if (!s) return;
  // Guilds already followed are ignored (docs/protocol.md, SUBSCRIBE).
  std::erase_if(guilds, [&](std::uint64_t g) { return s->link(g) != nullptr; });
  const std::size_t limit = shared_.config.max_guilds_per_session;
  if (s->guilds.size() + guilds.size() > limit) {
    return send_client_error(peer, Code::kTooLarge,
                             "a session may follow at most " + std::to_string(limit) +
                                 " guilds; it follows " + std::to_string(s->guilds.size()) +
                                 " and asked for " + std::to_string(guilds.size()) + " more",
                             request);
  }
  follow(*s, guilds, request);
}

void Shard::on_unsubscribe_request(const std::string& peer, wire::HeaderReader& r) {
  std::uint64_t request = 0;
  std::vector<std::uint64_t> guilds;
  Session* s = read_guild_request(peer, r, &request, guilds);
  if (!s) return;
  for (std::uint64_t g : guilds) {
    auto it = std::find_if(s->guilds.begin(), s->guilds.end(),
                           [&](const auto& entry) { return entry.first == g; });
    if (it != s->guilds.end()) {
      GuildLink& link = it->second;
      if (link.state == State::kPending) release_permit(link);
      if ((link.state == State::kPending || link.state == State::kActive) &&
          live_nodes_.count(link.owner)) {
        unsubscribe_at(link.owner, g, s->id);
      }
      s->guilds.erase(it);
    }
    StreamRecord item;
    item.type = static_cast<std::uint32_t>(Type::kUnsubscribed);
    item.guild = g;
    item.kind_or_request = request;
    emit_control(*s, item);
  }
}

void Shard::on_leave(const std::string& peer, wire::HeaderReader& r) {
  const std::uint64_t sid = r.u64("session_id");
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, 0);
  if (!session_of(peer, sid, sid)) return;
  close_session(sid, Code::kClosedByClient, "closed by the client", true, false);
}

Connection& Shard::connection_for(const std::string& peer) {
  auto [it, fresh] = connections_.try_emplace(peer);
  if (fresh) {
    it->second.id = peer;
    ++shared_.stats.connections;
  }
  return it->second;
}

void Shard::attach(Session& s, Connection& conn) {
  s.connection = &conn;
  conn.sessions.push_back(s.id);
  report_attached(conn.id, conn.sessions.size());
}

void Shard::unlink_from_connection(Session& s) {
  Connection* conn = s.connection;
  if (!conn) return;
  s.connection = nullptr;
  auto& list = conn->sessions;
  list.erase(std::remove(list.begin(), list.end(), s.id), list.end());
  report_attached(conn->id, list.size());
  if (list.empty()) {
    flush(*conn);  // what is queued was meant for it
    const std::string peer = conn->id;
    dirty_.erase(peer);
    connections_.erase(peer);
    --shared_.stats.connections;
  }
}

void Shard::report_attached(const std::string& peer, std::size_t count) {
  const char route = kAttached;
  std::uint32_t numbers[2] = {index_, static_cast<std::uint32_t>(count)};
  Frames f;
  f.reserve(3);
  f.push_back(frame_of(std::string_view(&route, 1)));
  f.push_back(frame_of(peer));
  f.emplace_back(numbers, sizeof(numbers));
  send(f);
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
  if (s.connection) {
    Connection& conn = *s.connection;
    const std::string peer = conn.id;
    // Items already queued for this session go out before it is closed.
    if (!goodbye && !conn.batch.empty()) flush(conn);
    // The hub's count changes before the client can see the close, so a
    // HEARTBEAT sent after SESSION_CLOSED counts without it.
    unlink_from_connection(s);
    if (tell_client) {
      wire::HeaderWriter w(Type::kSessionClosed, 3);
      w.u64(sid).u64(static_cast<std::uint64_t>(code)).str(reason);
      send_header(goodbye ? kGoodbye : kToClient, peer, w);
    }
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
  // The last close_session erased the connection.
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
  const Ring& ring = *ring_;
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
  send_subscribe(s, guild, name);
}

void Shard::send_subscribe(const Session& s, std::uint64_t guild, const std::string& owner) {
  wire::HeaderWriter w(u32(internal::Type::kSubscribe), 4);
  w.u64(guild).u64(s.id).u64(s.user);
  w.array(s.subscription_data.size());  // each plugin's bytes, by plugin index
  for (const std::string& data : s.subscription_data) w.bin(data);
  send_header(kToBroker, owner, w);
}

void Shard::on_subscribe_reply(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t sid = r.u64("session");
  const auto code = static_cast<Code>(r.u64("code"));
  const std::uint64_t guild_seq = r.u64("guild_seq");
  const std::uint64_t epoch = r.u64("epoch");
  // Why a plugin refused it (appended field; absent from older nodes).
  const std::string_view reason = r.has_more() ? r.str("reason") : std::string_view();
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
  StreamRecord item;
  item.type = static_cast<std::uint32_t>(Type::kSubscribed);
  item.guild = guild;
  item.code = static_cast<std::uint16_t>(code);
  item.kind_or_request = link->request_id;
  if (code == Code::kOk) {
    item.epoch = epoch;
    item.guild_seq = guild_seq;
    item.refetch = link->confirmed_before ? 1 : 0;
    link->state = State::kActive;
    link->attempts = 0;
    link->confirmed_before = true;
    link->epoch = epoch;
    link->moving_from_id = 0;
    link->request_id = 0;
  } else {
    item.bytes = reason;
    // Refused for good: the guild no longer counts as followed.
    std::erase_if(s.guilds, [&](const auto& entry) { return entry.first == guild; });
  }
  emit_control(s, item);
}

void Shard::on_deliver(Task& task) {
  const NodeConfig& cfg = shared_.config;
  const std::uint32_t max_batch = cfg.max_batch;
  const std::uint64_t stamp = ++delivery_stamp_;
  const std::uint32_t source = node_id(task.peer);
  std::uint64_t delivered = 0;
  std::uint64_t stale = 0;
  // One copy of the bytes per shard, shared by every session's replay buffer.
  StreamRecord* kept = nullptr;
  for (std::uint64_t sid : task.sessions) {
    Session* s = sessions_.find(sid);
    GuildLink* link = s ? s->link(task.guild) : nullptr;
    if (!link || link->state != State::kActive ||
        (link->owner_id != source && link->moving_from_id != source) ||
        (link->moving_from_id != 0 && source == link->owner_id && task.epoch != link->epoch)) {
      ++stale;  // left, moved, not yet confirmed, or a new owner's other epoch
      continue;
    }
    if (task.exclude_user != 0 && s->user == task.exclude_user) continue;
    // The loop holds a reference of its own (refs starts at 1): closing a
    // session below drops that session's references, and must not free what
    // later ones share.
    if (!kept) {
      kept = new StreamRecord;  // refs 1: the loop's own
      kept->bytes.assign(view_of(task.payload));
      kept->guild = task.guild;
      kept->kind_or_request = task.event_kind;
      kept->epoch = task.epoch;
      kept->guild_seq = task.guild_seq;
      kept->type = static_cast<std::uint32_t>(Type::kEvents);
    }
    const std::uint64_t seq = ++s->seq;
    s->replay.push(kept, seq, cfg.resume_buffer_events, cfg.resume_buffer_bytes);
    ++delivered;
    if (!s->connection) {
      if (!resumable(*s)) close_unresumable(*s);
      continue;
    }
    Connection& conn = *s->connection;
    conn.batch.add(sid, seq, task.guild, task.event_kind, task.epoch, task.guild_seq, task.payload,
                   stamp);
    if (conn.batch.size() >= max_batch || conn.batch.bytes() >= cfg.max_batch_bytes) {
      flush(conn);
    } else if (conn.batch.size() == 1) {
      dirty_.insert(conn.id);
    }
  }
  release_record(kept);
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

void Shard::relink_after_ring_change(bool everything) {
  const Ring& ring = *ring_;
  const auto now = Clock::now();
  std::vector<std::uint64_t> lost;
  sessions_.for_each([&](Session& s) {
    const std::uint64_t sid = s.id;
    lost.clear();
    for (auto& [guild, link] : s.guilds) {
      if (link.state != State::kActive && link.state != State::kPending) continue;
      const int owner = ring.find(guild);
      auto live = live_nodes_.find(link.owner);
      const bool owner_same = owner != Ring::kNone && ring.node_name(owner) == link.owner &&
                              live != live_nodes_.end() && live->second == link.owner_incarnation;
      if (owner_same && !everything) continue;
      // A planned move: the old owner is alive as the same process and hands
      // the guild over; the link follows it and confirms the epoch there.
      if (!everything && link.state == State::kActive && link.moving_from_id == 0 &&
          owner != Ring::kNone && live != live_nodes_.end() &&
          live->second == link.owner_incarnation) {
        follow_move(s, guild, link, ring.node_name(owner));
        continue;
      }
      link.moving_from_id = 0;
      if (link.state == State::kPending) release_permit(link);
      if (live != live_nodes_.end()) {
        unsubscribe_at(link.owner, guild, sid);
      }
      if (link.state == State::kActive) lost.push_back(guild);
      link.state = State::kWaiting;
      link.attempts = 0;
      link.due = now;
      timers_.emplace(now, std::make_pair(sid, guild));
    }
    // Loss is never silent: the session hears of each broken guild in its
    // stream, and gets SUBSCRIBED with refetch once it is back.
    for (std::uint64_t guild : lost) {
      StreamRecord item;
      item.type = static_cast<std::uint32_t>(Type::kGuildUnavailable);
      item.guild = guild;
      item.code = static_cast<std::uint16_t>(Code::kNoRoute);
      if (!emit_control(s, item)) break;
    }
  });
  // A move towards a node that has gone is decided by the relink above.
  std::erase_if(moves_, [&](const auto& m) { return !live_nodes_.count(m.second.to); });
}

}  // namespace hearth
