#include "nodes/node.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "broker/internal_limits.hpp"
#include "common/internal.hpp"
#include "common/log_text.hpp"
#include "common/wire.hpp"
#include "nodes/partitioner.hpp"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBrokerBacklog = 200000;
constexpr int kBurst = 1024;

std::uint64_t random_incarnation() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

std::uint32_t u32(internal::Type t) {
  return static_cast<std::uint32_t>(t);
}

}  // namespace

Node::Node(zmq::context_t& ctx, NodeConfig config)
    : config_(std::move(config)),
      ctx_(ctx),
      incarnation_(random_incarnation()),
      tokens_(config_.tokens ? config_.tokens : make_dev_token_checker()),
      identify_throttle_(config_.identify_limits),
      limiter_(config_.subscribe_permits),
      plugins_(config_.plugins, config_.plugin_limits),
      broker_(ctx, zmq::socket_type::dealer),
      clients_(ctx, zmq::socket_type::router),
      from_shards_(ctx, zmq::socket_type::pull),
      memory_(config_.max_memory),
      warnings_("node '" + printable(config_.name) + "'") {
  if (auto bad = invalid_node_name(config_.name)) throw std::invalid_argument(*bad);
  if (!config_.guild_role && !config_.session_role) {
    throw std::invalid_argument("a node needs the guild role, the session role, or both");
  }
  if (config_.shards == 0) config_.shards = std::max(1u, std::thread::hardware_concurrency());
  if (config_.shards > kMaxShards) {
    throw std::invalid_argument("at most " + std::to_string(kMaxShards) + " shards");
  }
  if (config_.vnodes == 0 || config_.vnodes > kMaxNodeWeight) {
    throw std::invalid_argument("weight (vnodes) must be in 1.." + std::to_string(kMaxNodeWeight));
  }
  if (config_.max_batch == 0) throw std::invalid_argument("max batch must be at least 1");
}

Node::~Node() {
  for (auto& s : shards_) s->stop();
  for (auto& s : shards_) s->join();
}

void Node::bind() {
  hub_endpoint_ = "inproc://hearth-hub-" + config_.name + "-" + std::to_string(incarnation_);
  from_shards_.set(zmq::sockopt::rcvhwm, 0);
  from_shards_.bind(hub_endpoint_);

  broker_.set(zmq::sockopt::routing_id, config_.name);
  broker_.set(zmq::sockopt::linger, 0);
  broker_.set(zmq::sockopt::sndhwm, 100000);
  broker_.set(zmq::sockopt::rcvhwm, 100000);
  if (config_.key && !config_.broker_public_key.empty()) {
    make_curve_client(broker_, *config_.key, config_.broker_public_key);
  }
  broker_.connect(config_.broker);

  if (config_.session_role) {
    clients_.set(zmq::sockopt::router_mandatory, 1);
    clients_.set(zmq::sockopt::sndhwm, static_cast<int>(config_.client_hwm));
    clients_.set(zmq::sockopt::rcvhwm, 10000);
    clients_.set(zmq::sockopt::linger, 0);
    // Reconnect storms (every client of a network blip at once) overflow
    // libzmq's default listen backlog of 100, and each dropped SYN costs its
    // client a 1 s, then 3 s, kernel retry. The kernel caps it at somaxconn.
    clients_.set(zmq::sockopt::backlog, 4096);
    clients_.set(zmq::sockopt::maxmsgsize,
                 static_cast<std::int64_t>(config_.max_payload + wire::kMaxHeaderBytes));
    if (config_.key && config_.clients_curve) {
      make_curve_server(clients_, *config_.key, "hearth-clients");
    }
    bind_or_explain(clients_, config_.listen, "client");
  }

  // Plugins load and start before any shard runs: a required plugin that
  // fails stops the node here, with the reason.
  plugins_.load_and_start();
  shared_ = std::make_unique<NodeShared>(
      NodeShared{config_, ctx_, hub_endpoint_, ring_, stats_, limiter_, *tokens_,
                 identify_throttle_, plugins_, incarnation_, config_.shards, last_epoch_});
  carry_.resize(config_.shards);
  for (unsigned i = 0; i < config_.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, *shared_));
    shards_.back()->start();
  }
  const bool broker_curve = config_.key && !config_.broker_public_key.empty();
  const bool clients_curve = config_.key && config_.clients_curve;
  spdlog::info("node '{}': roles {}{}, {} shard(s), broker {} ({}){}", config_.name,
               config_.guild_role ? "guild " : "", config_.session_role ? "session" : "",
               config_.shards, config_.broker, broker_curve ? "CURVE" : "NULL",
               config_.session_role
                   ? ", clients on " + config_.listen + (clients_curve ? " (CURVE)" : " (NULL)")
                   : "");
  if (config_.session_role)
    spdlog::warn("node '{}': tokens: {}", config_.name, tokens_->describe());
  spdlog::info("node '{}': memory ceiling {} (--max-memory)", config_.name,
               config_.max_memory ? std::to_string(config_.max_memory >> 20) + " MiB" : "none");
}

bool Node::throttled() const {
  return carried_ > 0 || to_broker_.size() >= kMaxBrokerBacklog / 2;
}

void Node::run(const std::atomic<bool>& stop, const std::atomic<bool>* drain) {
  Frames frames;
  auto next_register = Clock::now();
  auto next_stats = Clock::now() + config_.stats_interval;
  auto next_goodbye = Clock::now();
  auto next_client_sweep = Clock::now();
  Clock::time_point drained_since{};
  while (!stop.load(std::memory_order_relaxed)) {
    const bool paused = throttled();
    zmq::pollitem_t items[3] = {{from_shards_.handle(), 0, ZMQ_POLLIN, 0},
                                {broker_.handle(), 0, ZMQ_POLLIN, 0},
                                {clients_.handle(), 0, ZMQ_POLLIN, 0}};
    const int count = paused ? 1 : (config_.session_role ? 3 : 2);
    const bool busy =
        paused || !to_broker_.empty() || !goodbye_deadline_.empty() || !client_backlog_.empty();
    zmq::poll(items, count, std::chrono::milliseconds(busy ? 1 : 50));

    for (int i = 0; i < 4 * kBurst && recv_frames(from_shards_, frames); ++i) {
      on_shard_output(frames);
    }
    if (!to_broker_.empty()) send_to_broker(frames, 0);  // flushes the backlog only
    if (!client_backlog_.empty()) flush_client_backlogs();
    if (carried_ > 0) retry_carried();
    for (int i = 0; i < kBurst && !throttled() && recv_frames(broker_, frames); ++i) {
      on_broker(frames);
    }
    if (config_.session_role) {
      for (int i = 0; i < kBurst && !throttled() && recv_frames(clients_, frames); ++i) {
        on_client(frames);
      }
    }
    const auto now = Clock::now();
    memory_.check(now);
    if (drain && !draining_ && drain->load(std::memory_order_relaxed)) {
      begin_drain();
      next_register = now;
    }
    if (draining_) {
      if (drained()) {
        // Nothing left: what the shards sent last is read on the next turns.
        if (drained_since == Clock::time_point{}) drained_since = now;
        if (now - drained_since > std::chrono::milliseconds(200)) break;
      } else {
        drained_since = {};
      }
      if (now > drain_deadline_) {
        spdlog::warn("node '{}': drain not finished in {} ms; stopping anyway", config_.name,
                     config_.drain_timeout.count());
        break;
      }
    }
    if (now >= next_register) {
      register_with_broker();
      warnings_.flush(now);
      next_register = now + config_.heartbeat;
    }
    if (config_.session_role && now >= next_client_sweep) {
      detach_silent_connections(now);
      sweep_outbound();
      next_client_sweep = now + std::chrono::milliseconds(250);
    }
    if (!goodbye_deadline_.empty() && now >= next_goodbye) {
      retry_goodbyes();
      next_goodbye = now + std::chrono::milliseconds(50);
    }
    if (config_.stats_interval.count() > 0 && now >= next_stats) {
      plugins_.collect_stats();
      spdlog::info("node '{}' stats: {}{}", config_.name, stats_.summary(), plugins_.summary());
      next_stats = now + config_.stats_interval;
    }
  }
  if (config_.session_role) shut_down_sessions();
  if (draining_) deregister();
  for (auto& s : shards_) s->stop();
  for (auto& s : shards_) s->join();
  for (auto& s : shards_) s->release_plugin_slots();
  plugins_.stop_and_unload();  // on_node_stop runs with no shard left calling hooks
}

void Node::register_with_broker() {
  wire::HeaderWriter w(u32(internal::Type::kRegister), 5);
  std::uint32_t roles = 0;
  if (config_.guild_role) roles |= internal::kGuildRole;
  if (config_.session_role) roles |= internal::kSessionRole;
  if (draining_) roles |= internal::kDraining;
  w.str(config_.name).u64(roles).u64(config_.vnodes).u64(incarnation_).u64(config_.shards);
  Frames f;
  f.emplace_back();  // to the broker itself
  f.push_back(frame_of(w.view()));
  // Registration is periodic: a full link just skips this beat.
  send_frames(broker_, f, true);
}

void Node::begin_drain() {
  draining_ = true;
  drain_deadline_ = Clock::now() + config_.drain_timeout;
  spdlog::info(
      "node '{}': draining (guilds hand over, sessions told RECONNECT over {} ms; "
      "at most {} ms)",
      config_.name, config_.drain_window.count(), config_.drain_timeout.count());
  if (config_.session_role) {
    for (unsigned i = 0; i < shards_.size(); ++i) {
      auto task = std::make_unique<Task>();
      task->kind = Task::Kind::kDrain;
      push_task(i, std::move(task));
    }
  }
}

bool Node::drained() const {
  if (config_.guild_role && (!ring_shows_draining_ || stats_.guilds.load() != 0)) return false;
  if (config_.session_role && stats_.sessions.load() != 0) return false;
  return to_broker_.empty() && carried_ == 0;
}

void Node::note_ring(const RingUpdate& update) {
  for (const NodeView& n : update.nodes) {
    if (n.name == config_.name && n.incarnation == incarnation_) {
      ring_shows_draining_ = (n.roles & internal::kDraining) != 0;
    }
  }
}

void Node::deregister() {
  wire::HeaderWriter w(u32(internal::Type::kDeregister), 2);
  w.str(config_.name).u64(incarnation_);
  Frames f;
  f.emplace_back();  // to the broker itself
  f.push_back(frame_of(w.view()));
  // The backlog first, in order, so the handoffs precede the goodbye.
  Frames none;
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  while (!to_broker_.empty() && Clock::now() < deadline) {
    send_to_broker(none, 0);
    if (!to_broker_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  send_frames(broker_, f, true);
  broker_.set(zmq::sockopt::linger, 1000);
  spdlog::info("node '{}': drained and deregistered", config_.name);
}

void Node::push_task(unsigned shard, TaskPtr task) {
  auto& carry = carry_[shard];
  if (carry.empty() && shards_[shard]->inbox().try_push(task)) return;
  carry.push_back(std::move(task));
  ++carried_;
}

void Node::retry_carried() {
  for (unsigned i = 0; i < carry_.size(); ++i) {
    auto& carry = carry_[i];
    while (!carry.empty() && shards_[i]->inbox().try_push(carry.front())) {
      carry.pop_front();
      --carried_;
    }
  }
}

void Node::on_broker(Frames& frames) {
  // [source node ("" = broker), header, ...]
  if (frames.size() < 2) return;
  wire::HeaderReader r(frames[1].data(), frames[1].size());
  if (!r.ok()) {
    ++stats_.malformed;
    warnings_.warn(view_of(frames[0]), "node '{}': bad frame from '{}': {}", config_.name,
                   printable(view_of(frames[0])), printable(r.error().text, 512));
    return;
  }
  const unsigned shards = config_.shards;
  // What only the broker may send: an empty source frame names it.
  const bool from_broker = frames[0].size() == 0;
  if (r.type() == static_cast<std::uint32_t>(protocol::Type::kError)) {
    if (!from_broker) return refuse_internal(view_of(frames[0]), "ERROR from a node");
    // The broker refused our REGISTER (docs/security.md): say why.
    const std::uint64_t code = r.u64("code");
    const std::string_view text = r.str("text");
    warnings_.warn("broker", "node '{}': the broker says {}: {}", config_.name,
                   wire::code_name(static_cast<protocol::Code>(code)), printable(text, 512));
    return;
  }
  switch (static_cast<internal::Type>(r.type())) {
    case internal::Type::kRing:
      return on_ring(frames, r);
    case internal::Type::kHandoff:
    case internal::Type::kHandoffCheck:
    case internal::Type::kHandoffCheckReply: {
      // [guild, ...] to the guild's shard; a check's reply to the shard that asked.
      const std::uint64_t guild = r.u64("guild");
      const std::uint64_t shard = r.type() == u32(internal::Type::kHandoffCheckReply)
                                      ? r.peek_u64(1)
                                      : shard_of_key(guild, shards);
      const std::size_t expected = r.type() == u32(internal::Type::kHandoff) ? 3 : 2;
      if (!r.ok() || frames.size() != expected || shard >= shards) {
        ++stats_.malformed;
        return;
      }
      auto task = std::make_unique<Task>();
      task->kind = Task::Kind::kNodeMessage;
      task->peer = std::string(view_of(frames[0]));
      for (std::size_t i = 1; i < frames.size(); ++i) task->frames.push_back(std::move(frames[i]));
      push_task(static_cast<unsigned>(shard), std::move(task));
      return;
    }
    case internal::Type::kHandoffEnd: {
      if (frames.size() != 2) {
        ++stats_.malformed;
        return;
      }
      for (unsigned i = 0; i < shards; ++i) {
        auto task = std::make_unique<Task>();
        task->kind = Task::Kind::kNodeMessage;
        task->peer = std::string(view_of(frames[0]));
        task->frames.emplace_back().copy(frames[1]);
        push_task(i, std::move(task));
      }
      return;
    }
    case internal::Type::kForwardPublish: {
      auto task = std::make_unique<Task>();
      task->kind = Task::Kind::kPublish;
      task->guild = r.u64("guild");
      task->event_kind = r.u64("kind");
      task->ack_id = r.u64("ack_id");
      task->peer = std::string(r.bin("publisher", 255));
      if (!from_broker) return refuse_internal(view_of(frames[0]), "FORWARD_PUBLISH from a node");
      if (!r.ok() || frames.size() != 3 || !config_.guild_role) {
        ++stats_.malformed;
        return;
      }
      task->payload = std::move(frames[2]);
      const unsigned target = shard_of_key(task->guild, shards);
      push_task(target, std::move(task));
      return;
    }
    case internal::Type::kFanout: {
      const std::uint64_t guild = r.u64("guild");
      const std::uint64_t guild_seq = r.u64("guild_seq");
      const std::uint64_t kind = r.u64("kind");
      const std::uint64_t exclude_user = r.has_more() ? r.u64("exclude_user") : 0;
      const std::uint64_t epoch = r.has_more() ? r.u64("epoch") : 0;
      std::uint64_t foreign = 0;
      if (!r.ok() || frames.size() != 4 ||
          !partition_sessions(view_of(frames[2]), shards, partition_, &foreign)) {
        ++stats_.malformed;
        return;
      }
      stats_.stale_deliveries += foreign;
      const std::string source(view_of(frames[0]));
      for (unsigned i = 0; i < shards; ++i) {
        if (partition_[i].empty()) continue;
        auto task = std::make_unique<Task>();
        task->kind = Task::Kind::kDeliver;
        task->peer = source;
        task->guild = guild;
        task->guild_seq = guild_seq;
        task->event_kind = kind;
        task->exclude_user = exclude_user;
        task->epoch = epoch;
        task->sessions.swap(partition_[i]);
        task->payload.copy(frames[3]);
        push_task(i, std::move(task));
      }
      return;
    }
    case internal::Type::kPluginDeliver: {
      const std::uint64_t session = r.u64("session");
      const unsigned shard = shard_of_session(session);
      if (!r.ok() || frames.size() != 3 || shard >= shards) {
        ++stats_.malformed;
        return;
      }
      auto task = std::make_unique<Task>();
      task->kind = Task::Kind::kNodeMessage;
      task->peer = std::string(view_of(frames[0]));
      task->frames.push_back(std::move(frames[1]));
      task->frames.push_back(std::move(frames[2]));
      push_task(shard, std::move(task));
      return;
    }
    case internal::Type::kSubscribe:
    case internal::Type::kUnsubscribe:
    case internal::Type::kSubscribeReply: {
      const std::uint64_t guild = r.u64("guild");
      const std::uint64_t session = r.u64("session");
      if (!r.ok()) {
        ++stats_.malformed;
        return;
      }
      const bool to_session = r.type() == u32(internal::Type::kSubscribeReply);
      const unsigned shard = to_session ? shard_of_session(session) : shard_of_key(guild, shards);
      if (shard >= shards) return;
      auto task = std::make_unique<Task>();
      task->kind = Task::Kind::kNodeMessage;
      task->peer = std::string(view_of(frames[0]));
      task->frames.push_back(std::move(frames[1]));
      push_task(shard, std::move(task));
      return;
    }
    default:
      ++stats_.malformed;
      warnings_.warn(view_of(frames[0]), "node '{}': unexpected message type {} from '{}'",
                     config_.name, r.type(), printable(view_of(frames[0])));
  }
}

void Node::refuse_internal(std::string_view source, const std::string& why) {
  ++stats_.refused_internal;
  warnings_.warn(source, "node '{}': refused a message from '{}': {}", config_.name,
                 source.empty() ? std::string("the broker") : printable(source),
                 printable(why, 512));
}

void Node::on_ring(Frames& frames, wire::HeaderReader& r) {
  if (frames[0].size() != 0) return refuse_internal(view_of(frames[0]), "RING from a node");
  auto update = std::make_shared<RingUpdate>(decode_ring_update(r));
  if (!r.ok()) return refuse_internal("", "bad RING message: " + r.error().text);
  if (frames.size() != 2) return refuse_internal("", "RING with payload frames");
  if (auto bad = invalid_ring_update(*update, ring_version_)) {
    return refuse_internal("", "invalid RING: " + *bad);
  }
  std::shared_ptr<const Ring> built;
  try {
    built = update->build_ring();
  } catch (const std::exception& e) {  // the checks above should make this unreachable
    return refuse_internal("", std::string("RING does not build: ") + e.what());
  }
  ring_version_ = update->version;
  ring_.publish(built);
  spdlog::info("node '{}': ring version {} ({} node(s))", config_.name, update->version,
               update->nodes.size());
  note_ring(*update);
  for (unsigned i = 0; i < config_.shards; ++i) {
    auto task = std::make_unique<Task>();
    task->kind = Task::Kind::kRing;
    task->ring = update;
    task->built_ring = built;
    push_task(i, std::move(task));
  }
}

void Node::on_client(Frames& frames) {
  // [routing id, header, ...]
  if (frames.size() < 2) {
    ++stats_.malformed;
    wire::HeaderWriter w(protocol::Type::kError, 3);
    w.u64(static_cast<std::uint64_t>(protocol::Code::kMalformed))
        .str("message has no header frame")
        .u64(0);
    Frames reply;
    reply.push_back(std::move(frames[0]));
    reply.push_back(frame_of(w.view()));
    send_frames(clients_, reply, true);
    return;
  }
  // A connection closed for failed IDENTIFYs is not heard any more.
  if (identify_throttle_.closed(view_of(frames[0]), Clock::now())) return;
  bool answered = false;
  bool identify = false;
  const unsigned target = shard_for_client_message(frames, &answered, &identify);
  if (answered) return;
  auto task = std::make_unique<Task>();
  task->kind = Task::Kind::kClient;
  task->peer = std::string(view_of(frames[0]));
  if (identify) {
    // Set by libzmq on messages that came over TCP; absent over inproc.
    if (const char* address = zmq_msg_gets(frames[1].handle(), "Peer-Address")) {
      task->address = address;
    }
  }
  for (std::size_t i = 1; i < frames.size(); ++i) task->frames.push_back(std::move(frames[i]));
  push_task(target, std::move(task));
}

unsigned Node::shard_for_client_message(Frames& frames, bool* answered, bool* identify) {
  const std::string_view peer = view_of(frames[0]);
  tracker_.heard_from(peer, Clock::now());
  const unsigned home = shard_of_connection(peer, config_.shards);
  // Only enough decoding to route; the shard decodes again and answers errors.
  wire::HeaderReader r(frames[1].data(), frames[1].size());
  if (!r.ok()) return home;
  std::size_t session_field = 0;
  switch (static_cast<protocol::Type>(r.type())) {
    case protocol::Type::kHeartbeat: {
      const std::uint64_t nonce = r.has_more() ? r.u64("nonce") : 0;
      if (!r.ok() || frames.size() != 2) return home;  // the shard explains what is wrong
      // Answered here: only the hub knows every shard's sessions of this connection.
      wire::HeaderWriter w(protocol::Type::kHeartbeatAck, 2);
      w.u64(nonce).u64(tracker_.attached(peer));
      Frames reply;
      reply.push_back(std::move(frames[0]));
      reply.push_back(frame_of(w.view()));
      send_to_client(reply, 0, false);
      *answered = true;
      return home;
    }
    case protocol::Type::kLeave:
    case protocol::Type::kPluginMessage:
      session_field = 0;
      break;
    case protocol::Type::kSubscribe:
    case protocol::Type::kResume:
      if (memory_.above() && refused_for_memory(frames, r)) {
        *answered = true;
        return home;
      }
      [[fallthrough]];
    case protocol::Type::kUnsubscribe:
      session_field = 1;
      break;
    case protocol::Type::kIdentify:
      *identify = true;
      *answered = memory_.above() && refused_for_memory(frames, r);
      return home;  // IDENTIFY creates its session on the connection's own shard
    default:
      return home;
  }
  // A session's messages go to the shard that holds it, whichever connection
  // they come from (a RESUME usually comes from a new one).
  const std::uint64_t sid = r.peek_u64(session_field);
  const unsigned shard = shard_of_session(sid);
  return sid != 0 && shard < config_.shards ? shard : home;
}

bool Node::refused_for_memory(Frames& frames, const wire::HeaderReader& r) {
  ++stats_.refused_memory;
  std::uint64_t refused = 0;
  if (memory_.refused(Clock::now(), &refused)) {
    spdlog::warn(
        "node '{}': resident memory {} MiB is above --max-memory {} MiB; refused {} "
        "IDENTIFY/RESUME/SUBSCRIBE(s) with OVERLOADED since the last report",
        config_.name, memory_.rss() >> 20, memory_.limit() >> 20, refused);
  }
  wire::HeaderWriter w(protocol::Type::kError, 3);
  w.u64(static_cast<std::uint64_t>(protocol::Code::kOverloaded))
      .str("the node's memory is above its ceiling (--max-memory); retry later or elsewhere")
      .u64(r.peek_u64(0));  // request_id, the first field of all three
  Frames reply;
  reply.push_back(std::move(frames[0]));
  reply.push_back(frame_of(w.view()));
  send_to_client(reply, 0, false);
  return true;
}

void Node::detach_silent_connections(Clock::time_point now) {
  for (auto& [peer, shards] : tracker_.expire(now - config_.client_timeout)) {
    ++stats_.heartbeat_timeouts;
    tell_shards(peer, shards, Task::Kind::kConnectionGone);
  }
}

void Node::tell_shards_of(const std::string& peer, Task::Kind kind) {
  tell_shards(peer, tracker_.shards_of(peer, shard_of_connection(peer, config_.shards)), kind);
}

void Node::tell_shards(const std::string& peer, const std::vector<unsigned>& shards,
                       Task::Kind kind) {
  for (unsigned shard : shards) {
    auto task = std::make_unique<Task>();
    task->kind = kind;
    task->peer = peer;
    push_task(shard, std::move(task));
  }
}

void Node::shut_down_sessions() {
  for (unsigned i = 0; i < shards_.size(); ++i) {
    auto task = std::make_unique<Task>();
    task->kind = Task::Kind::kShutdown;
    push_task(i, std::move(task));
  }
  // Bounded: a client that does not read loses its SESSION_CLOSED, not our exit.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  Frames frames;
  auto all_done = [&] {
    for (auto& s : shards_) {
      if (!s->shut_down()) return false;
    }
    return true;
  };
  bool drained = false;
  while (Clock::now() < deadline && !drained) {
    const bool done = all_done();  // read before draining: what it sent is then in the pipe
    if (carried_ > 0) retry_carried();
    zmq::pollitem_t item{from_shards_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(5));
    while (recv_frames(from_shards_, frames)) on_shard_output(frames);
    if (!to_broker_.empty()) send_to_broker(frames, 0);
    if (!client_backlog_.empty()) flush_client_backlogs();
    drained = done && client_backlog_.empty();
  }
  // Lets libzmq finish writing what is queued when the socket closes.
  clients_.set(zmq::sockopt::linger, 1000);
}

void Node::on_shard_output(Frames& frames) {
  if (frames.size() < 3) return;
  switch (static_cast<char>(*static_cast<const char*>(frames[0].data()))) {
    case Shard::kAttached: {
      std::uint32_t numbers[2];
      if (frames[2].size() != sizeof(numbers)) return;
      std::memcpy(numbers, frames[2].data(), sizeof(numbers));
      tracker_.set_attached(view_of(frames[1]), numbers[0], numbers[1]);
      return;
    }
    case Shard::kToBroker:
      if (view_of(frames[1]) == config_.name) {
        // To this very node (both roles): skip the broker round trip. The
        // destination frame doubles as the source frame on_broker expects.
        frames.erase(frames.begin());
        on_broker(frames);
      } else {
        send_to_broker(frames, 1);
      }
      return;
    case Shard::kToClient:
      send_to_client(frames, 1, false);
      return;
    case Shard::kGoodbye:
      send_to_client(frames, 1, true);
      return;
    default:
      return;
  }
}

void Node::send_to_broker(Frames& frames, std::size_t first) {
  // Keeps order: nothing new goes out while a backlog waits.
  while (!to_broker_.empty()) {
    if (send_frames(broker_, to_broker_.front(), true) != SendResult::kSent) break;
    to_broker_.pop_front();
  }
  if (first == 0) return;
  Frames out;
  out.reserve(frames.size() - first);
  for (std::size_t i = first; i < frames.size(); ++i) out.push_back(std::move(frames[i]));
  if (to_broker_.empty() && send_frames(broker_, out, true) == SendResult::kSent) return;
  if (to_broker_.size() >= kMaxBrokerBacklog) {
    ++stats_.dropped_unroutable;
    return;
  }
  to_broker_.push_back(std::move(out));
}

void Node::send_to_client(Frames& frames, std::size_t first, bool goodbye) {
  std::string peer(view_of(frames[first]));
  Frames out;
  out.reserve(frames.size() - first);
  for (std::size_t i = first; i < frames.size(); ++i) out.push_back(std::move(frames[i]));
  if (stalled_.count(peer)) {
    // Data for a connection being closed is dropped: its sessions are gone.
    if (goodbye) {
      goodbyes_[peer].push_back(std::move(out));
    } else {
      ++stats_.dropped_slow;
    }
    return;
  }
  // Everything for a connection counts toward its output limits until libzmq
  // has written it (the header frame carries the count).
  Outbound& outbound = outbound_[peer];
  const std::size_t size = frames_bytes(out, 1);
  if (!goodbye && output_limit_reached(peer, outbound, size)) {
    declare_stalled(peer);
    return;
  }
  if (out.size() > 1) PipeBytes::track(outbound.bytes, out[1], size);
  auto backlog = client_backlog_.find(peer);
  if (backlog != client_backlog_.end()) {
    ClientBacklog& b = backlog->second;
    // Bounded in messages and in bytes: a message may carry many events.
    if (b.messages.size() < config_.client_backlog &&
        b.bytes + size <= config_.client_backlog_bytes) {
      b.bytes += size;
      b.messages.push_back(std::move(out));
    } else {
      declare_stalled(peer);
      if (goodbye) goodbyes_[peer].push_back(std::move(out));
    }
    return;
  }
  switch (send_frames(clients_, out, true)) {
    case SendResult::kSent:
      return;
    case SendResult::kUnroutable:
      connection_gone(peer);
      return;
    case SendResult::kWouldBlock: {
      ClientBacklog& b = client_backlog_[peer];
      b.bytes += size;
      b.messages.push_back(std::move(out));
      return;
    }
  }
}

void Node::flush_client_backlogs() {
  for (auto it = client_backlog_.begin(); it != client_backlog_.end();) {
    auto& queue = it->second.messages;
    bool gone = false;
    while (!queue.empty()) {
      const std::size_t size = frames_bytes(queue.front(), 1);
      const SendResult r = send_frames(clients_, queue.front(), true);
      if (r == SendResult::kWouldBlock) break;
      if (r == SendResult::kUnroutable) {
        gone = true;
        break;
      }
      it->second.bytes -= size;
      queue.pop_front();
    }
    if (gone) {
      const std::string peer = it->first;
      it = client_backlog_.erase(it);
      connection_gone(peer);
    } else if (queue.empty()) {
      it = client_backlog_.erase(it);
    } else {
      ++it;
    }
  }
}

void Node::declare_stalled(const std::string& peer) {
  auto backlog = client_backlog_.find(peer);
  if (backlog != client_backlog_.end()) {
    stats_.dropped_slow += backlog->second.messages.size();
    client_backlog_.erase(backlog);
  }
  stalled_.insert(peer);
  outbound_[peer].closed = true;
  goodbye_deadline_[peer] = Clock::now() + config_.client_timeout;
  tell_shards_of(peer, Task::Kind::kConnectionStalled);
}

bool Node::output_limit_reached(const std::string& peer, Outbound& out, std::size_t adding) {
  const std::size_t queued =
      static_cast<std::size_t>(std::max<std::int64_t>(out.bytes->bytes(), 0)) + adding;
  if (queued > config_.client_output_hard) {
    ++stats_.output_hard_limit;
    spdlog::warn("node '{}': connection {} has {} bytes queued, past --client-output-hard-bytes",
                 config_.name, hex_id(peer), queued);
    return true;
  }
  if (queued <= config_.client_output_soft) {
    out.above_soft_since = {};
    return false;
  }
  const auto now = Clock::now();
  if (out.above_soft_since == Clock::time_point{}) out.above_soft_since = now;
  if (now - out.above_soft_since < config_.client_output_soft_time) return false;
  ++stats_.output_soft_limit;
  spdlog::warn(
      "node '{}': connection {} held over {} bytes queued for {} ms "
      "(--client-output-soft-bytes, --client-output-soft-ms)",
      config_.name, hex_id(peer), config_.client_output_soft,
      std::chrono::duration_cast<std::chrono::milliseconds>(now - out.above_soft_since).count());
  return true;
}

void Node::sweep_outbound() {
  for (auto it = outbound_.begin(); it != outbound_.end();) {
    const std::string& peer = it->first;
    if (it->second.bytes->bytes() <= 0 && !stalled_.count(peer)) {
      it = outbound_.erase(it);  // nothing queued: forget it until it gets traffic again
    } else if (stalled_.count(peer) || it->second.closed) {
      ++it;
    } else if (output_limit_reached(peer, it->second, 0)) {
      const std::string stalled = peer;
      ++it;
      declare_stalled(stalled);
    } else {
      ++it;
    }
  }
}

void Node::connection_gone(const std::string& peer) {
  ++stats_.dropped_unroutable;
  tell_shards_of(peer, Task::Kind::kConnectionGone);
}

void Node::retry_goodbyes() {
  const auto now = Clock::now();
  for (auto it = goodbye_deadline_.begin(); it != goodbye_deadline_.end();) {
    const std::string& peer = it->first;
    auto queue = goodbyes_.find(peer);
    bool done = now > it->second;
    if (queue != goodbyes_.end()) {
      while (!done && !queue->second.empty()) {
        const SendResult r = send_frames(clients_, queue->second.front(), true);
        if (r == SendResult::kWouldBlock) break;
        if (r == SendResult::kUnroutable) done = true;
        queue->second.pop_front();
      }
      done = done || queue->second.empty();
    }
    if (done) {
      if (queue != goodbyes_.end()) goodbyes_.erase(queue);
      stalled_.erase(peer);
      it = goodbye_deadline_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace hearth
