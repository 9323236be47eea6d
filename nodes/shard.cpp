#include "nodes/shard.hpp"

#include <spdlog/spdlog.h>

#include "common/internal.hpp"
#include "nodes/session_id.hpp"

namespace hearth {
namespace {

using protocol::Code;
using protocol::Type;
using State = GuildLink::State;

constexpr auto kGuildIdle = std::chrono::seconds(60);
constexpr auto kSweepEvery = std::chrono::milliseconds(250);

std::uint32_t u32(internal::Type t) {
  return static_cast<std::uint32_t>(t);
}

// Refusals a retry cannot fix: the client is told and the link stops.
bool is_final(Code code) {
  return code == Code::kLimit || code == Code::kRejected;
}

}  // namespace

Shard::Shard(unsigned index, NodeShared& shared)
    : index_(index),
      shared_(shared),
      inbox_(shared.config.shard_queue),
      ring_(shared.ring),
      backoff_(std::chrono::milliseconds(50), std::chrono::milliseconds(5000),
               shared.incarnation * 131 + index),
      sessions_(static_cast<std::uint16_t>(shared.incarnation), index) {}

Shard::~Shard() {
  stop();
  join();
}

void Shard::start() {
  thread_ = std::thread([this] { run(); });
}

void Shard::join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::release_plugin_slots() {
  if (shared_.plugins.empty()) return;
  sessions_.for_each([&](Session& s) {
    if (!s.plugin_slots.empty()) shared_.plugins.session_freed(s.id, s.plugin_slots.data());
    s.plugin_slots.clear();
  });
  for (auto& [id, g] : guilds_) {
    if (!g.plugin_slots.empty()) shared_.plugins.guild_freed(id, g.plugin_slots.data());
    g.plugin_slots.clear();
  }
}

void Shard::send(Frames& frames) {
  send_frames(out_, frames, false);
}

void Shard::send_header(Route route, std::string_view destination,
                        const wire::HeaderWriter& header) {
  const char r = route;
  Frames f;
  f.reserve(3);
  f.push_back(frame_of(std::string_view(&r, 1)));
  f.push_back(frame_of(destination));
  f.push_back(frame_of(header.view()));
  send(f);
}

void Shard::unsubscribe_at(const std::string& owner, std::uint64_t guild, std::uint64_t session) {
  wire::HeaderWriter w(u32(internal::Type::kUnsubscribe), 2);
  w.u64(guild).u64(session);
  send_header(kToBroker, owner, w);
}

std::uint32_t Shard::node_id(const std::string& name) {
  auto [it, fresh] = node_ids_.try_emplace(name, static_cast<std::uint32_t>(node_ids_.size() + 1));
  return it->second;
}

void Shard::run() {
  out_ = zmq::socket_t(shared_.zmq, zmq::socket_type::push);
  out_.set(zmq::sockopt::sndhwm, 0);  // bounded by the hub's input throttling
  out_.set(zmq::sockopt::linger, 0);
  out_.connect(shared_.hub_endpoint);
  std::deque<TaskPtr> batch;
  const auto flush_interval = shared_.config.flush_interval;
  auto last_flush = Clock::now() - flush_interval;
  while (!stopping_.load(std::memory_order_relaxed)) {
    auto now = Clock::now();
    auto deadline = now + std::chrono::milliseconds(50);
    if (!timers_.empty()) deadline = std::min(deadline, timers_.begin()->first);
    if (!plugin_timers_.empty()) deadline = std::min(deadline, plugin_timers_.begin()->first);
    if (!dirty_.empty()) deadline = std::min(deadline, last_flush + flush_interval);
    inbox_.pop_all(batch, std::max(Clock::duration::zero(), deadline - now));
    for (TaskPtr& task : batch) {
      try {
        handle(*task);
      } catch (const std::exception& e) {
        spdlog::error("shard {}: task failed: {}", index_, e.what());
      }
    }
    batch.clear();
    now = Clock::now();
    run_timers(now);
    if (now >= next_sweep_) {
      sweep_connections(now);
      sweep_guilds(now);
      next_sweep_ = now + kSweepEvery;
    }
    // Coalescing: a connection gets at most one EVENTS message per flush
    // interval (unless its batch fills), so under load each message and each
    // system call carries many events; an idle shard flushes at once.
    if (!dirty_.empty() && now - last_flush >= flush_interval) {
      flush_dirty();
      last_flush = now;
    }
  }
  out_.close();
}

void Shard::handle(Task& task) {
  switch (task.kind) {
    case Task::Kind::kClient:
      on_client(task);
      break;
    case Task::Kind::kDeliver:
      on_deliver(task);
      break;
    case Task::Kind::kPublish:
      on_publish(task);
      break;
    case Task::Kind::kRing:
      on_ring(task);
      break;
    case Task::Kind::kConnectionStalled:
      ++shared_.stats.slow_consumers;
      spdlog::warn("shard {}: connection {} stopped reading; its sessions are closed", index_,
                   hex_id(task.peer));
      close_connection(task.peer, Code::kSlowConsumer,
                       "outbound queue full: the client did not read fast enough", true, true);
      break;
    case Task::Kind::kConnectionGone:
      close_connection(task.peer, Code::kSlowConsumer, "connection gone", false, false);
      break;
    case Task::Kind::kNodeMessage: {
      wire::HeaderReader r(task.frames[0].data(), task.frames[0].size());
      if (!r.ok()) break;  // the hub checked it
      switch (static_cast<internal::Type>(r.type())) {
        case internal::Type::kSubscribe:
          on_subscribe(task.peer, r);
          break;
        case internal::Type::kUnsubscribe:
          on_unsubscribe(task.peer, r);
          break;
        case internal::Type::kSubscribeReply:
          on_subscribe_reply(task.peer, r);
          break;
        case internal::Type::kPluginDeliver: {
          const std::uint64_t session = r.u64("session");
          const std::uint64_t kind = r.u64("kind");
          if (r.ok() && task.frames.size() == 2) {
            plugin_send_to_session(session, kind, view_of(task.frames[1]));
          }
          break;
        }
        default:
          break;
      }
      break;
    }
  }
}

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

bool Shard::plugin_publish(std::uint64_t guild, std::uint64_t kind, std::string_view payload) {
  wire::HeaderWriter w(u32(internal::Type::kPluginPublish), 2);
  w.u64(guild).u64(kind);
  Frames f;
  f.push_back(frame_of(std::string_view("B", 1)));
  f.emplace_back();  // to the broker, which routes it like a PUBLISH
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(payload));
  send(f);
  return true;
}

bool Shard::plugin_send_to_session(std::uint64_t session, std::uint64_t kind,
                                   std::string_view payload) {
  Session* s = sessions_.find(session);
  if (!s) return false;
  if (!s->connection->batch.empty()) flush(*s->connection);  // keep the session's order
  wire::HeaderWriter w(Type::kPluginMessage, 2);
  w.u64(session).u64(kind);
  Frames f;
  f.push_back(frame_of(std::string_view("C", 1)));
  f.push_back(frame_of(s->connection->id));
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(payload));
  send(f);
  return true;
}

bool Shard::plugin_send_to_member(const std::string& node, std::uint64_t session,
                                  std::uint64_t kind, std::string_view payload) {
  wire::HeaderWriter w(u32(internal::Type::kPluginDeliver), 2);
  w.u64(session).u64(kind);
  Frames f;
  f.push_back(frame_of(std::string_view("B", 1)));
  f.push_back(frame_of(node));  // this node itself short-circuits in the hub
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(payload));
  send(f);
  return true;
}

void** Shard::plugin_guild_slot(std::uint64_t guild, std::size_t plugin) {
  auto it = guilds_.find(guild);
  if (it == guilds_.end() || plugin >= it->second.plugin_slots.size()) return nullptr;
  return &it->second.plugin_slots[plugin];
}

void** Shard::plugin_session_slot(std::uint64_t session, std::size_t plugin) {
  Session* s = sessions_.find(session);
  if (!s || plugin >= s->plugin_slots.size()) return nullptr;
  return &s->plugin_slots[plugin];
}

std::uint64_t Shard::plugin_set_timer(std::size_t plugin, std::uint64_t delay_ms,
                                      std::uint64_t user_data) {
  // Unique across the node's shards: a plugin may keep ids in shared state.
  const std::uint64_t id = (static_cast<std::uint64_t>(index_) << 56) | next_timer_id_++;
  plugin_timers_.emplace(Clock::now() + std::chrono::milliseconds(delay_ms),
                         PluginTimer{plugin, id, user_data});
  return id;
}

bool Shard::plugin_set_subscription_data(std::uint64_t session, std::size_t plugin,
                                         std::string_view data) {
  Session* s = sessions_.find(session);
  if (!s || plugin >= shared_.plugins.size()) return false;
  if (s->subscription_data.size() < shared_.plugins.size()) {
    s->subscription_data.resize(shared_.plugins.size());
  }
  s->subscription_data[plugin].assign(data);
  return true;
}

std::size_t Shard::plugin_guild_members(std::uint64_t guild, std::uint64_t* sessions,
                                        std::uint64_t* users, std::size_t capacity) {
  auto it = guilds_.find(guild);
  if (it == guilds_.end()) return 0;
  std::size_t n = 0;
  it->second.for_each_member([&](std::uint64_t session, std::uint64_t user) {
    if (n < capacity) {
      if (sessions) sessions[n] = session;
      if (users) users[n] = user;
    }
    ++n;
  });
  return n;
}

void Shard::run_timers(Clock::time_point now) {
  while (!plugin_timers_.empty() && plugin_timers_.begin()->first <= now) {
    const PluginTimer t = plugin_timers_.begin()->second;
    plugin_timers_.erase(plugin_timers_.begin());
    hearth_timer_event ev{sizeof(hearth_timer_event), t.id, t.user_data};
    shared_.plugins.timer(*this, t.plugin, ev);
  }
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    auto [sid, guild] = node.mapped();
    Session* s = sessions_.find(sid);
    GuildLink* link = s ? s->link(guild) : nullptr;
    if (!link || link->due != node.key()) continue;
    if (link->state == State::kPending) {
      release_permit(*link);  // no answer in time
      schedule_retry(*s, guild, *link);
    } else if (link->state == State::kWaiting) {
      try_subscribe(*s, guild, *link);
    }
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

// ----------------------------------------------------------------- guild side

Shard::GuildMap::iterator Shard::start_guild(std::uint64_t id) {
  auto it = guilds_.emplace(id, Guild(id)).first;
  it->second.plugin_slots.assign(shared_.plugins.size(), nullptr);
  ++shared_.stats.guilds;
  return it;
}

Shard::GuildMap::iterator Shard::erase_guild(GuildMap::iterator it) {
  if (!shared_.plugins.empty()) {
    shared_.plugins.guild_freed(it->first, it->second.plugin_slots.data());
  }
  --shared_.stats.guilds;
  return guilds_.erase(it);
}

void Shard::publisher_error(const Task& task, Code code, const std::string& text) {
  if (task.ack_id == 0) return;  // no ack asked for: errors go unanswered, as documented
  wire::HeaderWriter w(Type::kError, 3);
  w.u64(static_cast<std::uint64_t>(code)).str(text).u64(task.ack_id);
  send_header(kToBroker, std::string(1, internal::kPublisherPrefix) + task.peer, w);
}

void Shard::on_publish(Task& task) {
  // Plugins see the event before the guild sequences it.
  if (shared_.plugins.has_publish_hooks()) {
    auto outcome =
        shared_.plugins.publish(*this, task.guild, task.event_kind, view_of(task.payload),
                                /*from_plugin=*/task.peer.empty());
    if (outcome.dropped) {
      ++shared_.stats.dropped_by_plugin;
      return publisher_error(task, Code::kRejected, outcome.reason);
    }
    if (outcome.replacement) {
      task.payload = frame_of(*outcome.replacement);
      if (outcome.kind != 0) task.event_kind = outcome.kind;
    }
    task.exclude_user = outcome.exclude_user;
  }
  auto it = guilds_.find(task.guild);
  if (it == guilds_.end()) {
    if (guilds_.size() * shared_.shards >= shared_.config.max_guilds) {
      return publisher_error(task, Code::kLimit, "guild node holds its maximum number of guilds");
    }
    it = start_guild(task.guild);
  }
  Guild& g = it->second;
  g.last_active = Clock::now();
  const std::uint64_t seq = g.next_seq();
  ++shared_.stats.published;
  wire::HeaderWriter h(u32(internal::Type::kFanout), 4);
  h.u64(g.id()).u64(seq).u64(task.event_kind).u64(task.exclude_user);
  const std::string_view header = h.view();
  std::uint64_t frames = 0;
  g.for_each_node([&](const std::string& node, zmq::message_t& packed) {
    Frames f;
    f.reserve(5);
    f.push_back(frame_of(std::string_view("B", 1)));
    f.push_back(frame_of(node));
    f.push_back(frame_of(header));
    f.emplace_back().copy(packed);
    f.emplace_back().copy(task.payload);
    send(f);
    ++frames;
  });
  shared_.stats.fanout_frames += frames;
  if (task.ack_id != 0) {
    wire::HeaderWriter w(Type::kPublishAck, 3);
    w.u64(task.ack_id).u64(g.id()).u64(seq);
    send_header(kToBroker, std::string(1, internal::kPublisherPrefix) + task.peer, w);
  }
}

void Shard::on_subscribe(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t sid = r.u64("session");
  const std::uint64_t user = r.u64("user");
  // Each plugin's subscription data, by plugin index (absent before any was set).
  std::vector<std::string_view> data;
  if (r.has_more()) {
    std::size_t n = 0;
    const msgpack::object* items = r.array("subscription_data", 256, &n);
    for (std::size_t i = 0; items && i < n; ++i) {
      if (items[i].type != msgpack::type::BIN) break;
      data.emplace_back(items[i].via.bin.ptr, items[i].via.bin.size);
    }
  }
  if (!r.ok()) return;
  Code code = Code::kOk;
  std::uint64_t seq = 0;
  const Ring& ring = ring_.get();
  const int owner = ring.find(guild);
  if (!live_nodes_.count(from) || owner == Ring::kNone ||
      ring.node_name(owner) != shared_.config.name) {
    code = Code::kNoRoute;  // rings disagree for a moment; the session retries
  } else {
    auto it = guilds_.find(guild);
    if (it == guilds_.end() && guilds_.size() * shared_.shards >= shared_.config.max_guilds) {
      code = Code::kOverloaded;
    } else {
      if (it == guilds_.end()) it = start_guild(guild);
      Guild& g = it->second;
      g.last_active = Clock::now();
      if (g.member_count() >= shared_.config.max_members_per_guild) {
        code = Code::kLimit;
      } else {
        const bool added = g.add(from, sid, user);
        seq = g.seq();
        if (added && !shared_.plugins.empty()) {
          hearth_subscription_event ev{
              sizeof(hearth_subscription_event), guild, sid, user, from.c_str(), {nullptr, 0}};
          shared_.plugins.subscribed(*this, ev, data);
        }
      }
    }
  }
  wire::HeaderWriter w(u32(internal::Type::kSubscribeReply), 4);
  w.u64(guild).u64(sid).u64(static_cast<std::uint64_t>(code)).u64(seq);
  send_header(kToBroker, from, w);
}

void Shard::on_unsubscribe(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t sid = r.u64("session");
  if (!r.ok()) return;
  auto it = guilds_.find(guild);
  if (it == guilds_.end()) return;
  const std::uint64_t user = it->second.user_of(from, sid);
  if (it->second.remove(from, sid) && !shared_.plugins.empty()) {
    hearth_subscription_event ev{
        sizeof(hearth_subscription_event), guild, sid, user, from.c_str(), {nullptr, 0}};
    shared_.plugins.unsubscribed(*this, ev);
  }
}

void Shard::apply_ring_to_guilds(const RingUpdate& update) {
  std::unordered_map<std::string, std::uint64_t> live;
  for (const NodeView& n : update.nodes) live.emplace(n.name, n.incarnation);
  for (const auto& [name, inc] : live_nodes_) {
    auto now = live.find(name);
    if (now != live.end() && now->second == inc) continue;
    for (auto& [id, g] : guilds_) g.drop_node(name);  // left or restarted
  }
  live_nodes_ = std::move(live);
  const Ring& ring = ring_.get();
  for (auto it = guilds_.begin(); it != guilds_.end();) {
    const int owner = ring.find(it->first);
    if (owner == Ring::kNone || ring.node_name(owner) != shared_.config.name) {
      it = erase_guild(it);  // moved: its sessions re-subscribe at the new owner
    } else {
      ++it;
    }
  }
}

void Shard::sweep_guilds(Clock::time_point now) {
  for (auto it = guilds_.begin(); it != guilds_.end();) {
    if (it->second.member_count() == 0 && now - it->second.last_active > kGuildIdle) {
      it = erase_guild(it);
    } else {
      ++it;
    }
  }
}

void Shard::on_ring(Task& task) {
  apply_ring_to_guilds(*task.ring);
  if (shared_.config.session_role) relink_after_ring_change();
}

}  // namespace hearth
