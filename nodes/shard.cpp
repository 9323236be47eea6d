// Shard: its thread, its task loop, timers and ring changes.
#include "nodes/shard.hpp"

#include <spdlog/spdlog.h>

#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

Shard::Shard(unsigned index, NodeShared& shared)
    : index_(index),
      shared_(shared),
      inbox_(shared.config.shard_queue),
      ring_(std::make_shared<const Ring>(RingSpec{}, 0)),
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
        handle(task);
      } catch (const std::exception& e) {
        spdlog::error("shard {}: task failed: {}", index_, e.what());
      }
    }
    batch.clear();
    now = Clock::now();
    run_timers(now);
    if (now >= next_sweep_) {
      sweep_detached(now);
      sweep_guilds(now);
      expire_held(now);
      if (draining_) send_reconnects(now);
      if (!moves_.empty()) send_handoff_checks(now);
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

void Shard::handle(TaskPtr& owned) {
  Task& task = *owned;
  switch (task.kind) {
    case Task::Kind::kClient:
      on_client(task);
      break;
    case Task::Kind::kDeliver:
      on_deliver(task);
      break;
    case Task::Kind::kPublish:
      if (!hold_for_handoff(task.guild, owned)) on_publish(task);
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
      detach_connection(task.peer);
      break;
    case Task::Kind::kShutdown:
      shutdown_sessions();
      break;
    case Task::Kind::kDrain:
      start_drain();
      break;
    case Task::Kind::kNodeMessage: {
      wire::HeaderReader r(task.frames[0].data(), task.frames[0].size());
      if (!r.ok()) break;  // the hub checked it
      const auto type = static_cast<internal::Type>(r.type());
      // Messages about a guild that is moving here wait for its HANDOFF.
      if ((type == internal::Type::kSubscribe || type == internal::Type::kUnsubscribe ||
           type == internal::Type::kHandoffCheck) &&
          hold_for_handoff(r.peek_u64(0), owned)) {
        break;
      }
      switch (type) {
        case internal::Type::kSubscribe:
          on_subscribe(task.peer, r);
          break;
        case internal::Type::kUnsubscribe:
          on_unsubscribe(task.peer, r);
          break;
        case internal::Type::kHandoff:
          on_handoff(task.peer, task);
          break;
        case internal::Type::kHandoffEnd:
          on_handoff_end(task.peer, r);
          break;
        case internal::Type::kHandoffCheck:
          on_handoff_check(task.peer, r);
          break;
        case internal::Type::kHandoffCheckReply:
          on_handoff_check_reply(task.peer, r);
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

void Shard::on_ring(Task& task) {
  ring_ = task.built_ring;
  apply_ring_to_guilds(*task.ring);
  if (!shared_.config.session_role) return;
  // A ring without this node means the broker expired it: every guild node
  // dropped its members, so every link must be made again.
  bool self_present = false;
  for (const NodeView& n : task.ring->nodes) {
    if (n.name == shared_.config.name && n.incarnation == shared_.incarnation) self_present = true;
  }
  const bool dropped = !self_present && !self_missing_;
  self_missing_ = !self_present;
  relink_after_ring_change(dropped);
  if (!moves_.empty()) send_handoff_checks(Clock::now());
}

}  // namespace hearth
