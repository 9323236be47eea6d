// Shard, the services plugin hooks call (PluginShardServices).
#include <spdlog/spdlog.h>

#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

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
  // A detached session has nobody to send to: plugin messages are not part
  // of the stream and are not replayed (docs/protocol.md, PLUGIN_MESSAGE).
  if (!s || !s->connection) return false;
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

}  // namespace hearth
