// Shard, guild side: the guild registry, publishing and membership.
#include <spdlog/spdlog.h>

#include "common/wall_clock.hpp"
#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

// ----------------------------------------------------------------- guild side

std::uint64_t Shard::next_epoch() {
  // Wall-clock microseconds, strictly increasing within the node: unique per
  // guild creation, and larger after a restart unless the clock went back.
  const std::uint64_t now = wall_micros();
  std::uint64_t last = shared_.last_epoch.load();
  std::uint64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!shared_.last_epoch.compare_exchange_weak(last, next));
  return next;
}

bool Shard::reserve_guild() {
  // Counted over the whole node, not per shard (docs/protocol.md, Limits).
  if (shared_.stats.guilds.fetch_add(1) >= shared_.config.max_guilds) {
    --shared_.stats.guilds;
    return false;
  }
  return true;
}

Shard::GuildMap::iterator Shard::start_guild(std::uint64_t id) {
  auto it = guilds_.emplace(id, Guild(id, next_epoch())).first;
  it->second.plugin_slots.assign(shared_.plugins.size(), nullptr);
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
  // Sent even without an ack_id (ref 0): a publisher may give up confirmation
  // of success, never news of a loss (docs/protocol.md, PUBLISH).
  if (task.peer.empty()) return;  // a plugin's publish has nobody to tell
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
  // Fence: sequence only what this node owns under its ring. A node that
  // wakes from a hang with publishes queued for guilds it lost refuses them.
  const Ring& ring = *ring_;
  const int owner = ring.find(task.guild);
  if (owner == Ring::kNone || ring.node_name(owner) != shared_.config.name) {
    ++shared_.stats.refused_not_owner;
    return publisher_error(task, Code::kNoRoute,
                           "node '" + shared_.config.name + "' does not own guild " +
                               std::to_string(task.guild) + "; publish again");
  }
  auto it = guilds_.find(task.guild);
  if (it == guilds_.end()) {
    if (!reserve_guild()) {
      return publisher_error(task, Code::kLimit, "guild node holds its maximum number of guilds");
    }
    it = start_guild(task.guild);
  }
  Guild& g = it->second;
  g.last_active = Clock::now();
  const std::uint64_t seq = g.next_seq();
  ++shared_.stats.published;
  wire::HeaderWriter h(u32(internal::Type::kFanout), 5);
  h.u64(g.id()).u64(seq).u64(task.event_kind).u64(task.exclude_user).u64(g.epoch());
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
    // The ring version it was sequenced under: the broker passes the ack on
    // only if the guild has not changed owner since (docs/design.md, fencing).
    wire::HeaderWriter w(Type::kPublishAck, 5);
    w.u64(task.ack_id).u64(g.id()).u64(seq).u64(g.epoch()).u64(ring.version());
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
  std::string reason;  // why a plugin refused it
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  const Ring& ring = *ring_;
  const int owner = ring.find(guild);
  if (!live_nodes_.count(from) || owner == Ring::kNone ||
      ring.node_name(owner) != shared_.config.name) {
    code = Code::kNoRoute;  // rings disagree for a moment; the session retries
  } else {
    auto it = guilds_.find(guild);
    if (it == guilds_.end() && !reserve_guild()) {
      code = Code::kLimit;  // final: the session is told and stops asking
    } else {
      if (it == guilds_.end()) it = start_guild(guild);
      Guild& g = it->second;
      g.last_active = Clock::now();
      if (g.member_count() >= shared_.config.max_members_per_guild) {
        code = Code::kLimit;
      } else {
        const bool added = g.add(from, sid, user);
        const bool announce = added || (!g.unannounced.empty() && g.unannounced.erase(sid) > 0);
        seq = g.seq();
        epoch = g.epoch();
        if (announce && !shared_.plugins.empty()) {
          hearth_subscription_event ev{sizeof(hearth_subscription_event),
                                       guild,
                                       sid,
                                       user,
                                       from.c_str(),
                                       {nullptr, 0},
                                       nullptr};
          if (auto refusal = shared_.plugins.subscribed(*this, ev, data)) {
            g.remove(from, sid);  // plugins fail closed (docs/plugins.md)
            code = Code::kRejected;
            reason = std::move(*refusal);
            seq = epoch = 0;
          }
        }
      }
    }
  }
  wire::HeaderWriter w(u32(internal::Type::kSubscribeReply), 6);
  w.u64(guild).u64(sid).u64(static_cast<std::uint64_t>(code)).u64(seq).u64(epoch).str(reason);
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
        sizeof(hearth_subscription_event), guild, sid, user, from.c_str(), {nullptr, 0}, nullptr};
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
  track_handing_nodes(update);
  export_moved_guilds();
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

}  // namespace hearth
