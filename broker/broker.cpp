#include "broker/broker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/internal_limits.hpp"
#include "broker/zap_handler.hpp"
#include "common/internal.hpp"
#include "common/log_text.hpp"
#include "common/wall_clock.hpp"
#include "common/wire.hpp"

namespace hearth {
namespace {

using protocol::Code;
using Clock = std::chrono::steady_clock;

// Rings kept for the ack fence. An ack stamped with an older ring than these
// is refused (OWNER_CHANGED): it waited through 32 ring changes.
constexpr std::size_t kRecentRings = 32;

}  // namespace

int frontend_rcvhwm(const BrokerConfig& config) {
  const std::size_t hwm = config.frontend_buffer / std::max<std::size_t>(config.max_frame, 1);
  return static_cast<int>(std::clamp<std::size_t>(hwm, 1, 100000));
}

Broker::Broker(zmq::context_t& ctx, BrokerConfig config)
    : ctx_(ctx),
      config_(std::move(config)),
      frontend_(ctx_, zmq::socket_type::router),
      backend_(ctx_, zmq::socket_type::router),
      membership_(config_.node_timeout),
      ring_(std::make_shared<const Ring>(RingSpec{}, 0)),
      memory_(config_.max_memory) {
  for (zmq::socket_t* s : {&frontend_, &backend_}) {
    s->set(zmq::sockopt::router_mandatory, 1);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 100000);
    s->set(zmq::sockopt::rcvhwm, 100000);
  }
  // A payload over the limit gets TOO_LARGE; a frame over max_frame never
  // reaches memory whole: libzmq drops the publisher's connection instead.
  // What one publisher can have waiting is then bounded in bytes: at most
  // rcvhwm frames of max_frame bytes (frontend_buffer).
  frontend_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(config_.max_frame));
  frontend_.set(zmq::sockopt::rcvhwm, frontend_rcvhwm(config_));
  // A node restarted under the same name takes its routing id back at once.
  backend_.set(zmq::sockopt::router_handover, 1);
}

Broker::~Broker() = default;

void Broker::bind() {
  secure_endpoints();
  bind_or_explain(frontend_, config_.frontend, "publisher");
  bind_or_explain(backend_, config_.backend, "node");
  if (!config_.local_backend.empty()) bind_or_explain(backend_, config_.local_backend, "node");
  spdlog::info("broker: publishers on {}, nodes on {}, hash mode {}, node timeout {} ms",
               config_.frontend, config_.backend,
               config_.mode == HashMode::kFast ? "fast" : "ex_hash_ring",
               config_.node_timeout.count());
  spdlog::info(
      "broker: memory ceiling {} (--max-memory), {} MiB per node queue, frames up to {} "
      "bytes",
      config_.max_memory ? std::to_string(config_.max_memory >> 20) + " MiB" : "none",
      config_.max_pending_bytes_per_node >> 20, config_.max_frame);
}

void Broker::secure_endpoints() {
  if (!config_.key) return;
  std::map<std::string, ZapDomain> domains;
  if (config_.node_keys) {
    auto& d = domains["hearth-backend"];
    for (const auto& k : *config_.node_keys) d.keys[k.public_key] = k.name;
    make_curve_server(backend_, *config_.key, "hearth-backend");
  }
  if (config_.publishers) {
    auto& d = domains["hearth-frontend"];
    for (const auto& k : *config_.publishers) {
      d.keys[k.public_key] = k.name;
      publisher_guilds_[k.name] = k.guilds;
    }
    make_curve_server(frontend_, *config_.key, "hearth-frontend");
  }
  // A node sharing this context (all-in-one) serves CURVE clients with any
  // key: users authenticate by token.
  domains["hearth-clients"].any_key = true;
  zap_ = std::make_unique<ZapHandler>(ctx_, std::move(domains));
}

bool Broker::may_publish(const zmq::message_t& publisher, const zmq::message_t& header,
                         std::uint64_t guild, std::uint64_t ack_id) {
  // libzmq tags every message of a CURVE connection with the User-Id the ZAP
  // handler gave it: the publisher's name from the key list.
  const char* user = zmq_msg_gets(header.handle(), "User-Id");
  const auto it = user ? publisher_guilds_.find(user) : publisher_guilds_.end();
  if (it != publisher_guilds_.end() && it->second.contains(guild)) return true;
  ++stats_.forbidden;
  reply_error(publisher, Code::kForbidden,
              "publisher '" + std::string(user ? user : "?") + "' may not publish to guild " +
                  std::to_string(guild),
              ack_id);
  return false;
}

bool Broker::frontend_paused() const {
  if (pending_max_ >= config_.max_pending_per_node / 2) return true;
  for (const auto& [node, bytes] : node_bytes_) {
    // A node that left the ring may keep a full pipe (hung, not closed); it
    // no longer holds anyone's publishes back.
    if (static_cast<std::size_t>(std::max<std::int64_t>(bytes->bytes(), 0)) >=
            config_.max_pending_bytes_per_node / 2 &&
        membership_.contains(node)) {
      return true;
    }
  }
  return false;
}

const std::shared_ptr<PipeBytes>& Broker::pipe_bytes(const std::string& node) {
  auto& counter = node_bytes_[node];
  if (!counter) counter = std::make_shared<PipeBytes>();
  return counter;
}

void Broker::refuse_for_memory(const zmq::message_t& publisher, std::uint64_t ack_id) {
  ++stats_.refused_memory;
  std::uint64_t refused = 0;
  if (memory_.refused(Clock::now(), &refused)) {
    spdlog::warn(
        "broker: resident memory {} MiB is above --max-memory {} MiB; refused {} "
        "PUBLISH(es) with OVERLOADED since the last report",
        memory_.rss() >> 20, memory_.limit() >> 20, refused);
  }
  reply_error(publisher, Code::kOverloaded,
              "the broker's memory is above its ceiling (--max-memory); retry later", ack_id);
}

void Broker::run(const std::atomic<bool>& stop) {
  Frames frames;
  settle_until_ = Clock::now() + config_.settle;
  settling_ = config_.settle.count() > 0;
  auto next_expire = Clock::now();
  auto next_stats = Clock::now() + config_.stats_interval;
  while (!stop.load(std::memory_order_relaxed)) {
    zmq::pollitem_t items[] = {{backend_.handle(), 0, ZMQ_POLLIN, 0},
                               {frontend_.handle(), 0, ZMQ_POLLIN, 0}};
    const bool paused = frontend_paused();
    const int timeout_ms = pending_.empty() && !paused ? 100 : 1;
    zmq::poll(items, paused ? 1 : 2, std::chrono::milliseconds(timeout_ms));
    // Bounded bursts per socket keep either side from starving the other.
    // One clock read per burst: liveness needs no finer time than that.
    const auto received = Clock::now();
    for (int i = 0; i < 1024 && recv_frames(backend_, frames); ++i) on_backend(frames, received);
    if (!frontend_paused()) {
      for (int i = 0; i < 1024 && recv_frames(frontend_, frames); ++i) {
        on_frontend(frames);
        if (frontend_paused()) break;
      }
    }
    if (!pending_.empty()) flush_pending();
    const auto now = Clock::now();
    if (settling_ && now >= settle_until_) {
      settling_ = false;
      spdlog::info("broker: {} node(s) registered in the first {} ms", membership_.nodes().size(),
                   config_.settle.count());
      if (!membership_.nodes().empty()) broadcast_ring();
    }
    memory_.check(now);
    if (now >= next_expire) {
      expire_nodes();
      warnings_.flush(now);
      next_expire = now + std::chrono::milliseconds(100);
    }
    if (config_.stats_interval.count() > 0 && now >= next_stats) {
      log_stats();
      next_stats = now + config_.stats_interval;
    }
  }
}

void Broker::reply_error(const zmq::message_t& publisher, Code code, const std::string& text,
                         std::uint64_t ref) {
  wire::HeaderWriter w(protocol::Type::kError, 3);
  w.u64(static_cast<std::uint64_t>(code)).str(text).u64(ref);
  Frames reply;
  reply.emplace_back(publisher.data(), publisher.size());
  reply.push_back(frame_of(w.view()));
  send_frames(frontend_, reply, true);  // a publisher that cannot take its error loses it
}

void Broker::on_frontend(Frames& frames) {
  if (frames.size() < 2) {
    ++stats_.malformed;
    reply_error(frames[0], Code::kMalformed, "message has no header frame", 0);
    return;
  }
  wire::HeaderReader r(frames[1].data(), frames[1].size());
  if (!r.ok()) {
    ++stats_.malformed;
    reply_error(frames[0], r.error().code, r.error().text, 0);
    return;
  }
  switch (static_cast<protocol::Type>(r.type())) {
    case protocol::Type::kPublish: {
      const std::uint64_t guild = r.u64("guild_id");
      const std::uint64_t kind = r.u64("kind");
      const std::uint64_t ack_id = r.has_more() ? r.u64("ack_id") : 0;
      if (r.ok() && frames.size() != 3) {
        r.fail(Code::kMalformed, "PUBLISH takes exactly one payload frame after the header; got " +
                                     std::to_string(frames.size() - 2));
      }
      if (r.ok() && frames[2].size() > config_.max_payload) {
        ++stats_.too_large;
        r.fail(Code::kTooLarge, "payload of " + std::to_string(frames[2].size()) +
                                    " bytes exceeds the limit of " +
                                    std::to_string(config_.max_payload));
      }
      if (!r.ok()) {
        ++stats_.malformed;
        // A field before ack_id may be what failed: ack_id is still the ref when readable.
        reply_error(frames[0], r.error().code, r.error().text, ack_id ? ack_id : r.peek_u64(2));
        return;
      }
      if (!publisher_guilds_.empty() && !may_publish(frames[0], frames[1], guild, ack_id)) return;
      if (memory_.above()) return refuse_for_memory(frames[0], ack_id);
      ++stats_.published;
      std::string owner;
      switch (forward_publish(guild, kind, ack_id, view_of(frames[0]), frames[2], &owner)) {
        case Forwarded::kSent:
          return;
        case Forwarded::kNoRoute:
          return reply_error(frames[0], Code::kNoRoute,
                             "no live guild node owns guild " + std::to_string(guild), ack_id);
        case Forwarded::kRefused:
          return reply_error(frames[0], Code::kOverloaded,
                             "guild node " + owner + " is not accepting messages", ack_id);
      }
      return;
    }
    case protocol::Type::kHeartbeat: {
      const std::uint64_t nonce = r.has_more() ? r.u64("nonce") : 0;
      wire::HeaderWriter w(protocol::Type::kHeartbeatAck, 2);
      w.u64(nonce).u64(0);  // a publisher holds no sessions
      Frames reply;
      reply.push_back(std::move(frames[0]));
      reply.push_back(frame_of(w.view()));
      send_frames(frontend_, reply, true);
      return;
    }
    default:
      ++stats_.malformed;
      reply_error(frames[0], Code::kUnknownType,
                  "the broker accepts PUBLISH and HEARTBEAT; got type " + std::to_string(r.type()),
                  0);
  }
}

void Broker::on_backend(Frames& frames, Clock::time_point received) {
  // [node, destination, header, ...]
  if (frames.size() < 3) {
    ++stats_.malformed;
    warnings_.warn(view_of(frames[0]), "broker: dropped a {}-frame message from node '{}'",
                   frames.size(), printable(view_of(frames[0])));
    return;
  }
  const std::string_view from = view_of(frames[0]);
  const std::string_view dest = view_of(frames[1]);
  if (dest.empty()) {
    wire::HeaderReader r(frames[2].data(), frames[2].size());
    const bool is_register =
        r.ok() && r.type() == static_cast<std::uint32_t>(internal::Type::kRegister);
    if (!is_register && !accepts_from(from, dest)) return;
    membership_.heard_from(from, received);
    if (is_register) {
      on_register(std::string(from), r);
    } else if (r.ok() && r.type() == static_cast<std::uint32_t>(internal::Type::kDeregister)) {
      on_deregister(std::string(from), r);
    } else if (r.ok() && r.type() == static_cast<std::uint32_t>(internal::Type::kPluginPublish) &&
               frames.size() == 4) {
      // A plugin's publish: routed like PUBLISH, without an ack.
      const std::uint64_t guild = r.u64("guild");
      const std::uint64_t kind = r.u64("kind");
      if (!r.ok()) {
        ++stats_.malformed;
        return;
      }
      ++stats_.published;
      std::string owner;
      forward_publish(guild, kind, /*ack_id=*/0, /*publisher=*/"", frames[3], &owner);
    } else {
      ++stats_.malformed;
      warnings_.warn(view_of(frames[0]), "broker: bad control message from node '{}': {}",
                     printable(view_of(frames[0])),
                     r.ok() ? "unexpected type " + std::to_string(r.type()) : r.error().text);
    }
    return;
  }
  if (!accepts_from(from, dest)) return;
  membership_.heard_from(from, received);
  if (dest[0] == internal::kPublisherPrefix) return to_publisher(frames);
  // Node to node: [dest, source, header, ...]
  std::string target(dest);
  std::swap(frames[0], frames[1]);
  ++stats_.routed;
  send_to_node(target, frames);
}

bool Broker::accepts_from(std::string_view from, std::string_view destination) {
  if (membership_.is_member(from)) return true;
  // A node expired while it hung sends what it had queued when it wakes; its
  // acks must still reach the fence below (which answers OWNER_CHANGED), so
  // a publisher is told. Only names of recent rings qualify.
  if (!destination.empty() && destination[0] == internal::kPublisherPrefix) {
    for (const auto& recent : recent_rings_) {
      if (recent.alive.find(std::string(from)) != recent.alive.end()) return true;
    }
  }
  ++stats_.refused_unregistered;
  warnings_.warn(from, "broker: refused a message from '{}', which is not a registered node",
                 printable(from));
  return false;
}

void Broker::to_publisher(Frames& frames) {
  // [node, @publisher, header, ...]
  const std::string node(view_of(frames[0]));
  const std::string publisher(view_of(frames[1]).substr(1));
  wire::HeaderReader r(frames[2].data(), frames[2].size());
  if (r.ok() && r.type() == static_cast<std::uint32_t>(protocol::Type::kPublishAck)) {
    const std::uint64_t ack_id = r.u64("ack_id");
    const std::uint64_t guild = r.u64("guild_id");
    const std::uint64_t guild_seq = r.u64("guild_seq");
    const std::uint64_t epoch = r.u64("epoch");
    const std::uint64_t ring_version = r.u64("ring_version");
    if (!r.ok()) {
      ++stats_.malformed;
      return;
    }
    // Fence: an ack means the event was sequenced by the guild's owner and
    // fanned out before any change of owner; the fan-out went ahead of this
    // ack through this broker, so every session linked to that owner got it.
    if (!membership_.contains(node) || !owned_throughout(guild, node, ring_version)) {
      ++stats_.acks_fenced;
      return reply_error(frame_of(publisher), Code::kOwnerChanged,
                         "guild " + std::to_string(guild) + " changed owner before node '" + node +
                             "' acknowledged the event: subscribers may miss it; "
                             "publish again",
                         ack_id);
    }
    wire::HeaderWriter w(protocol::Type::kPublishAck, 4);
    w.u64(ack_id).u64(guild).u64(guild_seq).u64(epoch);
    Frames out;
    out.push_back(frame_of(publisher));
    out.push_back(frame_of(w.view()));
    send_frames(frontend_, out, true);  // a vanished publisher loses its answer
    return;
  }
  frames[1].rebuild(publisher.data(), publisher.size());
  Frames out;
  out.reserve(frames.size() - 1);
  for (std::size_t i = 1; i < frames.size(); ++i) out.push_back(std::move(frames[i]));
  send_frames(frontend_, out, true);
}

bool Broker::owned_throughout(std::uint64_t guild, std::string_view node,
                              std::uint64_t since) const {
  if (recent_rings_.empty() || recent_rings_.front().ring->version() > since) return false;
  bool first = true;
  std::uint64_t incarnation = 0;
  for (auto it = recent_rings_.begin(); it != recent_rings_.end(); ++it) {
    // From the ring the event was sequenced under (the newest at or before `since`).
    auto next = std::next(it);
    if (next != recent_rings_.end() && next->ring->version() <= since) continue;
    auto alive = it->alive.find(std::string(node));
    if (alive == it->alive.end()) return false;
    if (first) {
      const int owner = it->ring->find(guild);
      if (owner == Ring::kNone || it->ring->node_name(owner) != node) return false;
      incarnation = alive->second;
      first = false;
    } else if (alive->second != incarnation) {
      return false;  // it restarted: the process that sequenced is gone
    }
    // A later owner got the guild by HANDOFF from this node, after the event.
  }
  return !first;
}

void Broker::on_deregister(const std::string& from, wire::HeaderReader& r) {
  const std::string_view name = r.str("name", 255);
  const std::uint64_t incarnation = r.u64("incarnation");
  if (!r.ok() || name != from || !membership_.remove(from, incarnation)) {
    ++stats_.malformed;
    spdlog::warn("broker: ignored DEREGISTER from '{}'", from);
    return;
  }
  ++stats_.deregistered;
  spdlog::info("broker: node '{}' drained and left", from);
  pending_.erase(from);
  broadcast_ring();
}

void Broker::on_register(const std::string& from, wire::HeaderReader& r) {
  NodeView node;
  node.name = std::string(r.str("name", kMaxNodeNameBytes));
  // Wider values are clamped to one past the limit, never truncated to a valid one.
  node.roles = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.u64("roles"), 0xff));
  node.vnodes = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(r.u64("vnodes"), std::uint64_t{kMaxNodeWeight} + 1));
  node.incarnation = r.u64("incarnation");
  std::optional<std::string> refused;
  if (!r.ok()) {
    refused = r.error().text;
  } else if (node.name != from) {
    refused = std::string("the name must equal the routing id");
  } else if (!(refused = invalid_node_view(node))) {
    refused = membership_.refusal(node, Clock::now());
  }
  if (refused) {
    ++stats_.refused_registers;
    warnings_.warn(from, "broker: refused REGISTER from '{}': {}", printable(from),
                   printable(*refused, 512));
    // The node logs the reason: an operator's mistake (a weight too large)
    // must not look like a silent hang.
    wire::HeaderWriter w(protocol::Type::kError, 3);
    w.u64(static_cast<std::uint64_t>(Code::kRejected)).str("REGISTER refused: " + *refused).u64(0);
    Frames reply;
    reply.push_back(frame_of(from));
    reply.emplace_back();
    reply.push_back(frame_of(w.view()));
    send_frames(backend_, reply, true);
    return;
  }
  const bool is_new = !membership_.contains(node.name);
  const bool restarted =
      !is_new && membership_.nodes().at(node.name).incarnation != node.incarnation;
  if (membership_.upsert(node, Clock::now())) {
    spdlog::info("broker: node '{}' {} (roles {}{}{}, {} vnodes)", printable(node.name),
                 is_new ? "joined" : "re-registered",
                 node.roles & internal::kGuildRole ? "guild " : "",
                 node.roles & internal::kSessionRole ? "session" : "",
                 node.roles & internal::kDraining ? ", draining" : "", node.vnodes);
    if (restarted)
      pending_.erase(node.name);  // a new incarnation must not get the old one's backlog
    broadcast_ring();
  } else if (is_new) {
    broadcast_ring();
  }
}

void Broker::expire_nodes() {
  auto gone = membership_.expire(Clock::now());
  if (gone.empty()) return;
  for (const auto& name : gone) {
    spdlog::warn("broker: node '{}' missed its heartbeats and left the ring", printable(name));
    pending_.erase(name);
  }
  broadcast_ring();
}

void Broker::broadcast_ring() {
  if (settling_) return;  // the first ring waits for every node's REGISTER
  RingUpdate update;
  update.version = std::max(wall_micros(), ring_version_ + 1);
  ring_version_ = update.version;
  update.mode = config_.mode;
  update.pins = config_.pins;
  update.previous_version = ring_->version();
  update.previous_nodes = std::move(last_nodes_);
  std::uint64_t guild_nodes = 0;
  for (const auto& [name, view] : membership_.nodes()) {
    update.nodes.push_back(view);
    if (view.roles & internal::kGuildRole) ++guild_nodes;
  }
  ring_ = update.build_ring();
  last_nodes_ = update.nodes;
  RecentRing recent{ring_, {}};
  for (const NodeView& n : update.nodes) recent.alive.emplace(n.name, n.incarnation);
  recent_rings_.push_back(std::move(recent));
  if (recent_rings_.size() > kRecentRings) recent_rings_.pop_front();
  stats_.ring_version = update.version;
  stats_.guild_nodes = guild_nodes;
  stats_.nodes = update.nodes.size();
  const std::string encoded = encode_ring_update(update);
  for (const auto& [name, view] : membership_.nodes()) {
    Frames out;
    out.push_back(frame_of(name));
    out.emplace_back();
    out.push_back(frame_of(encoded));
    send_to_node(name, out);
  }
  spdlog::info("broker: ring version {} with {} guild node(s) of {} node(s)", update.version,
               guild_nodes, update.nodes.size());
}

Broker::Forwarded Broker::forward_publish(std::uint64_t guild, std::uint64_t kind,
                                          std::uint64_t ack_id, std::string_view publisher,
                                          zmq::message_t& payload, std::string* owner_name) {
  const int owner = ring_->find(guild);
  if (owner == Ring::kNone) {
    ++stats_.no_route;
    return Forwarded::kNoRoute;
  }
  *owner_name = ring_->node_name(owner);
  wire::HeaderWriter w(static_cast<std::uint32_t>(internal::Type::kForwardPublish), 4);
  w.u64(guild).u64(kind).u64(ack_id).bin(publisher);
  Frames out;
  out.reserve(4);
  out.push_back(frame_of(*owner_name));
  out.emplace_back();  // from the broker itself
  out.push_back(frame_of(w.view()));
  out.push_back(std::move(payload));
  return send_to_node(*owner_name, out) ? Forwarded::kSent : Forwarded::kRefused;
}

bool Broker::send_to_node(const std::string& node, Frames& frames) {
  // [node, source, header, ...]: the header carries the message's byte count
  // until libzmq has written it to the node.
  const auto& counter = pipe_bytes(node);
  const std::size_t size = frames_bytes(frames, 1);
  if (static_cast<std::size_t>(std::max<std::int64_t>(counter->bytes(), 0)) + size >
      config_.max_pending_bytes_per_node) {
    ++stats_.dropped_full;
    return false;
  }
  PipeBytes::track(counter, frames[2], size);
  auto it = pending_.find(node);
  if (it == pending_.end()) {
    switch (send_frames(backend_, frames, true)) {
      case SendResult::kSent:
        return true;
      case SendResult::kUnroutable:
        ++stats_.dropped_full;
        spdlog::debug("broker: node '{}' is not connected; message dropped", node);
        return false;
      case SendResult::kWouldBlock:
        it = pending_.emplace(node, std::deque<Frames>{}).first;
        break;
    }
  }
  if (it->second.size() >= config_.max_pending_per_node) {
    ++stats_.dropped_full;
    return false;
  }
  it->second.push_back(std::move(frames));
  pending_max_ = std::max(pending_max_, it->second.size());
  return true;
}

void Broker::flush_pending() {
  pending_max_ = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto& queue = it->second;
    while (!queue.empty()) {
      const SendResult r = send_frames(backend_, queue.front(), true);
      if (r == SendResult::kWouldBlock) break;
      if (r == SendResult::kUnroutable) ++stats_.dropped_full;
      queue.pop_front();
    }
    if (queue.empty()) {
      it = pending_.erase(it);
    } else {
      pending_max_ = std::max(pending_max_, queue.size());
      ++it;
    }
  }
}

void Broker::log_stats() {
  spdlog::info(
      "broker stats: nodes={} guild_nodes={} published={} routed={} malformed={} no_route={} "
      "dropped={} acks_fenced={} too_large={} refused_memory={} forbidden={} "
      "refused_unregistered={} refused_registers={} warnings_suppressed={} rss_mib={}",
      stats_.nodes.load(), stats_.guild_nodes.load(), stats_.published.load(), stats_.routed.load(),
      stats_.malformed.load(), stats_.no_route.load(), stats_.dropped_full.load(),
      stats_.acks_fenced.load(), stats_.too_large.load(), stats_.refused_memory.load(),
      stats_.forbidden.load(), stats_.refused_unregistered.load(), stats_.refused_registers.load(),
      warnings_.suppressed(), resident_bytes() >> 20);
}

}  // namespace hearth
