// Shard, planned guild moves (docs/design.md, "Handoff"). When a ring change
// moves a guild from a node that is still alive, the old owner sends the new
// one the guild's epoch, sequence and members (HANDOFF); the new owner holds
// the guild's messages until then and continues the same sequence. Sessions
// keep taking the old owner's events until the new owner confirms the epoch
// (HANDOFF_CHECK), so they see neither a gap nor a marker.
#include <spdlog/spdlog.h>

#include "nodes/guild_handoff.hpp"
#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

namespace {

// Rings remembered to find who owned a guild before this node: enough for
// the ring changes of one rolling step (a node leaving, then joining).
constexpr std::size_t kRingHistory = 8;

}  // namespace

// ----------------------------------------------------------------- guild side

bool Shard::hold_for_handoff(std::uint64_t guild, TaskPtr& task) {
  if (handing_.empty() || guilds_.count(guild)) return false;
  auto held = held_.find(guild);
  if (held == held_.end()) {
    const std::string& self = shared_.config.name;
    const int owner = ring_->find(guild);
    if (owner == Ring::kNone || ring_->node_name(owner) != self) return false;
    // The newest ring in which someone else owned it, and the first one after
    // it (which gave it to this node).
    std::uint64_t mine_since = ring_->version();
    const std::string* from = nullptr;
    for (auto it = ring_history_.rbegin(); it != ring_history_.rend(); ++it) {
      const int o = (*it)->find(guild);
      if (o == Ring::kNone) break;
      if ((*it)->node_name(o) != self) {
        from = &(*it)->node_name(o);
        break;
      }
      mine_since = (*it)->version();
    }
    if (!from) return false;
    auto handing = handing_.find(*from);
    if (handing == handing_.end() || handing->second.done_version >= mine_since) return false;
    held = held_
               .emplace(
                   guild,
                   HeldGuild{*from, mine_since, Clock::now() + shared_.config.handoff_timeout, {}})
               .first;
  }
  if (held_tasks_ >= shared_.config.max_held) {
    // Bounded: a publisher is told; a SUBSCRIBE or HANDOFF_CHECK goes
    // unanswered and its session node asks again after its timeout.
    if (task->kind == Task::Kind::kPublish) {
      ++shared_.stats.handoff_refused;
      publisher_error(*task, Code::kOverloaded,
                      "guild " + std::to_string(guild) +
                          " is moving to this node and its queue is full; publish again");
    }
    return true;
  }
  held->second.tasks.push_back(std::move(task));
  ++held_tasks_;
  return true;
}

template <class Pred>
void Shard::release_held(Pred done) {
  std::vector<std::uint64_t> ready;
  for (const auto& [guild, held] : held_) {
    if (done(guild, held)) ready.push_back(guild);
  }
  const std::string& self = shared_.config.name;
  for (std::uint64_t guild : ready) {
    auto node = held_.extract(guild);
    std::deque<TaskPtr> tasks = std::move(node.mapped().tasks);
    held_tasks_ -= tasks.size();
    // Not handed over: the old owner had nothing, died, or timed out. The
    // guild starts in a new epoch; sessions that followed it learn of the
    // loss from HANDOFF_CHECK.
    const int owner = ring_->find(guild);
    if (!guilds_.count(guild) && owner != Ring::kNone && ring_->node_name(owner) == self &&
        reserve_guild()) {
      start_guild(guild)->second.last_active = Clock::now();
      ++shared_.stats.handoffs_fresh;
    }
    for (TaskPtr& task : tasks) handle(task);
  }
}

void Shard::expire_held(Clock::time_point now) {
  if (held_.empty()) return;
  release_held([&](std::uint64_t guild, const HeldGuild& h) {
    if (h.deadline > now) return false;
    spdlog::warn("shard {}: no HANDOFF of guild {} from '{}' in {} ms; it starts afresh", index_,
                 guild, h.from, shared_.config.handoff_timeout.count());
    return true;
  });
}

void Shard::track_handing_nodes(const RingUpdate& update) {
  std::unordered_map<std::string, std::uint64_t> guild_nodes;
  for (const NodeView& n : update.nodes) {
    if ((n.roles & internal::kGuildRole) && n.name != shared_.config.name) {
      guild_nodes.emplace(n.name, n.incarnation);
    }
  }
  for (auto it = handing_.begin(); it != handing_.end();) {
    auto live = guild_nodes.find(it->first);
    if (live == guild_nodes.end() || live->second != it->second.incarnation) {
      it = handing_.erase(it);  // gone or restarted: it hands nothing over
    } else {
      ++it;
    }
  }
  for (const auto& [name, incarnation] : guild_nodes) {
    if (!handing_.count(name)) handing_.emplace(name, HandingNode{incarnation, 0, {}});
  }
  // A node that just joined learns from the RING who owned its guilds before.
  if (ring_history_.empty() && update.previous_version != 0) {
    ring_history_.push_back(update.build_previous_ring());
  }
  ring_history_.push_back(ring_);
  if (ring_history_.size() > kRingHistory) ring_history_.pop_front();
  // Held guilds whose old owner left, or that moved on again, wait no more.
  const std::string& self = shared_.config.name;
  release_held([&](std::uint64_t guild, const HeldGuild& h) {
    const int owner = ring_->find(guild);
    return !handing_.count(h.from) || owner == Ring::kNone || ring_->node_name(owner) != self;
  });
}

void Shard::export_moved_guilds() {
  const Ring& ring = *ring_;
  const std::string& self = shared_.config.name;
  for (auto it = guilds_.begin(); it != guilds_.end();) {
    const int owner = ring.find(it->first);
    if (owner != Ring::kNone && ring.node_name(owner) == self) {
      ++it;
      continue;
    }
    // Events this shard sequenced went out before this HANDOFF, on the same
    // path (shard -> hub -> broker), so every member has them first.
    if (owner != Ring::kNone && live_nodes_.count(ring.node_name(owner))) {
      Frames handoff = encode_handoff(it->second, ring.version());
      const char route = kToBroker;
      Frames f;
      f.reserve(4);
      f.push_back(frame_of(std::string_view(&route, 1)));
      f.push_back(frame_of(ring.node_name(owner)));
      f.push_back(std::move(handoff[0]));
      f.push_back(std::move(handoff[1]));
      send(f);
      ++shared_.stats.handoffs_sent;
    }
    it = erase_guild(it);
  }
  if (!shared_.config.guild_role) return;
  // Every guild node may be holding guilds that were this node's: tell each
  // that this shard has sent all it will for this ring.
  wire::HeaderWriter end(u32(internal::Type::kHandoffEnd), 3);
  end.u64(ring.version()).u64(index_).u64(shared_.shards);
  for (std::size_t i = 0; i < ring.node_count(); ++i) {
    const std::string& name = ring.node_name(static_cast<int>(i));
    if (name != self) send_header(kToBroker, name, end);
  }
}

void Shard::on_handoff(const std::string& from, Task& task) {
  if (task.frames.size() != 2) return;
  wire::HeaderReader r(task.frames[0].data(), task.frames[0].size());
  const DecodedHandoff h = decode_handoff(r, view_of(task.frames[1]));
  if (!r.ok()) {
    ++shared_.stats.malformed;
    spdlog::warn("shard {}: bad HANDOFF from '{}': {}", index_, from, r.error().text);
    return;
  }
  auto it = guilds_.find(h.guild);
  if (it == guilds_.end()) {
    if (!reserve_guild()) {
      spdlog::warn("shard {}: guild {} handed over by '{}' exceeds --max-guilds; dropped", index_,
                   h.guild, from);
      return;
    }
    it = guilds_.emplace(h.guild, Guild(h.guild, h.epoch, h.guild_seq)).first;
    it->second.plugin_slots.assign(shared_.plugins.size(), nullptr);
    ++shared_.stats.handoffs_received;
  }
  // A guild already started here (its handoff came too late) keeps its own
  // epoch; the members join it, and their sessions learn of the loss from
  // HANDOFF_CHECK.
  Guild& g = it->second;
  g.last_active = Clock::now();
  if (!h.for_each_member([&](const std::string& node, std::uint64_t session, std::uint64_t user) {
        if (live_nodes_.count(node) && g.add(node, session, user) && !shared_.plugins.empty()) {
          g.unannounced.insert(session);
        }
      })) {
    ++shared_.stats.malformed;
  }
  release_held([&](std::uint64_t guild, const HeldGuild&) { return guild == h.guild; });
  // Moved on again meanwhile: pass it along.
  const int owner = ring_->find(h.guild);
  if (owner == Ring::kNone || ring_->node_name(owner) != shared_.config.name) {
    export_moved_guilds();
  }
}

void Shard::on_handoff_end(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t version = r.u64("ring_version");
  const std::uint64_t shard = r.u64("shard");
  const std::uint64_t shards = r.u64("shards");
  if (!r.ok() || shards == 0 || shards > kMaxShards || shard >= shards) return;
  auto handing = handing_.find(from);
  if (handing == handing_.end() || version <= handing->second.done_version) return;
  auto& heard = handing->second.ends[version];
  heard.resize(shards);
  heard[shard] = true;
  for (bool b : heard) {
    if (!b) return;
  }
  handing->second.done_version = version;
  std::erase_if(handing->second.ends, [&](const auto& e) { return e.first <= version; });
  release_held([&](std::uint64_t, const HeldGuild& h) {
    return h.from == from && h.ring_version <= version;
  });
}

void Shard::on_handoff_check(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t shard = r.u64("shard");
  if (!r.ok()) return;
  Code code = Code::kOk;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  const int owner = ring_->find(guild);
  if (owner == Ring::kNone || ring_->node_name(owner) != shared_.config.name) {
    code = Code::kNoRoute;  // rings disagree for a moment; asked again
  } else if (auto it = guilds_.find(guild); it != guilds_.end()) {
    epoch = it->second.epoch();
    seq = it->second.seq();
  }  // else epoch 0: nothing was handed over
  wire::HeaderWriter w(u32(internal::Type::kHandoffCheckReply), 5);
  w.u64(guild).u64(shard).u64(static_cast<std::uint64_t>(code)).u64(epoch).u64(seq);
  send_header(kToBroker, from, w);
}

// --------------------------------------------------------------- session side

void Shard::follow_move(Session& s, std::uint64_t guild, GuildLink& link, const std::string& to) {
  // Only a move from a link that has no move under way keeps the old owner:
  // its events all arrive before the new owner's confirmation.
  if (link.moving_from_id == 0) link.moving_from_id = link.owner_id;
  link.owner = to;
  link.owner_id = node_id(to);
  auto inc = live_nodes_.find(to);
  link.owner_incarnation = inc == live_nodes_.end() ? 0 : inc->second;
  Move& move = moves_[guild];
  if (move.to != to) {
    move.to = to;
    move.attempts = 0;
    move.due = Clock::now();
  }
  move.sessions.push_back(s.id);
}

void Shard::send_handoff_checks(Clock::time_point now) {
  for (auto& [guild, move] : moves_) {
    if (move.due > now) continue;
    wire::HeaderWriter w(u32(internal::Type::kHandoffCheck), 2);
    w.u64(guild).u64(index_);
    send_header(kToBroker, move.to, w);
    move.due = now + (move.attempts == 0 ? shared_.config.subscribe_timeout
                                         : backoff_.delay(move.attempts));
    ++move.attempts;
  }
}

bool Shard::link_lost(Session& s, std::uint64_t guild, GuildLink& link, Clock::time_point now) {
  link.moving_from_id = 0;
  link.state = State::kWaiting;
  link.attempts = 0;
  link.due = now;
  timers_.emplace(now, std::make_pair(s.id, guild));
  StreamRecord item;
  item.type = static_cast<std::uint32_t>(Type::kGuildUnavailable);
  item.guild = guild;
  item.code = static_cast<std::uint16_t>(Code::kNoRoute);
  return emit_control(s, item);
}

void Shard::on_handoff_check_reply(const std::string& from, wire::HeaderReader& r) {
  const std::uint64_t guild = r.u64("guild");
  const std::uint64_t shard = r.u64("shard");
  const auto code = static_cast<Code>(r.u64("code"));
  const std::uint64_t epoch = r.u64("epoch");
  r.u64("guild_seq");
  if (!r.ok() || shard != index_) return;
  auto move = moves_.find(guild);
  if (move == moves_.end() || move->second.to != from) return;  // late: moved on since
  if (code != Code::kOk) {
    move->second.due = Clock::now() + backoff_.delay(move->second.attempts++);
    return;
  }
  const std::vector<std::uint64_t> sessions = std::move(move->second.sessions);
  moves_.erase(move);
  const auto now = Clock::now();
  const std::uint32_t owner_id = node_id(from);
  for (std::uint64_t sid : sessions) {
    Session* s = sessions_.find(sid);
    GuildLink* link = s ? s->link(guild) : nullptr;
    if (!link || link->state != State::kActive || link->owner_id != owner_id ||
        link->moving_from_id == 0) {
      continue;
    }
    if (epoch != 0 && epoch == link->epoch) {
      link->moving_from_id = 0;  // the same sequence goes on: nothing to tell
      ++shared_.stats.moves_confirmed;
      // The new owner's plugins have not seen this member yet.
      if (!shared_.plugins.empty()) send_subscribe(*s, guild, from);
    } else {
      ++shared_.stats.moves_lost;
      link_lost(*s, guild, *link, now);
    }
  }
}

}  // namespace hearth
