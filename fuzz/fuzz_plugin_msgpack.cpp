// libFuzzer target: the bundled presence plugin's MessagePack decoding of
// client bytes (IDENTIFY presence, PLUGIN_MESSAGE kinds 200 and 204, the
// subscription data a guild node receives), loaded through the real plugin
// host as a node loads it, plus the shared bounded unpacker.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/plugin_host.hpp"
#include "shared/untrusted_msgpack.hpp"

namespace {

// A shard with one session (7) and one guild (9): enough for presence's hooks.
class FakeShard final : public hearth::PluginShardServices {
 public:
  bool plugin_publish(std::uint64_t, std::uint64_t, std::string_view) override { return true; }
  bool plugin_send_to_session(std::uint64_t, std::uint64_t, std::string_view) override {
    return true;
  }
  void** plugin_guild_slot(std::uint64_t guild, std::size_t plugin) override {
    return guild == 9 ? &guild_slots_[plugin] : nullptr;
  }
  void** plugin_session_slot(std::uint64_t session, std::size_t plugin) override {
    return session == 7 ? &session_slots_[plugin] : nullptr;
  }
  std::uint64_t plugin_set_timer(std::size_t, std::uint64_t, std::uint64_t) override { return 1; }
  bool plugin_send_to_member(const std::string&, std::uint64_t, std::uint64_t,
                             std::string_view) override {
    return true;
  }
  bool plugin_set_subscription_data(std::uint64_t, std::size_t, std::string_view) override {
    return true;
  }
  std::size_t plugin_guild_members(std::uint64_t, std::uint64_t* sessions, std::uint64_t* users,
                                   std::size_t capacity) override {
    if (capacity > 0) {
      sessions[0] = 7;
      users[0] = 1;
    }
    return 1;
  }
  void* session_slots_[4] = {};
  void* guild_slots_[4] = {};
};

hearth::PluginHost& host() {
  static hearth::PluginHost* h = [] {
    hearth::PluginSpec spec;
    spec.name = "presence";
    spec.path = HEARTH_PRESENCE_PLUGIN;
    spec.required = true;
    hearth::PluginLimits limits;
    limits.failure_limit = 1u << 30;  // keep it enabled whatever the input does
    auto* created = new hearth::PluginHost({spec}, limits);
    created->load_and_start();
    return created;
  }();
  return *h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const hearth_bytes bytes{data, size};
  try {
    hearth::plugins::unpack_untrusted(data, size);
  } catch (const std::exception&) {
  }
  FakeShard shard;
  hearth::PluginHost& h = host();
  // The session appears with the fuzzed presence, takes messages, joins a
  // guild with fuzzed subscription data, and goes away.
  const std::uint64_t guilds[] = {9};
  hearth_identify_event id{};
  id.struct_size = sizeof(id);
  id.session_id = 7;
  id.user_id = 1;
  id.guilds = guilds;
  id.guild_count = 1;
  id.presence = bytes;
  h.identify(shard, id);
  for (std::uint64_t kind : {200u, 204u}) {
    hearth_message_event m{sizeof(hearth_message_event), 7, 1, kind, bytes};
    h.message(shard, m);
  }
  hearth_subscription_event sub{sizeof(hearth_subscription_event), 9, 7, 1, "node-1", {}, nullptr};
  h.subscribed(shard, sub, {std::string_view(reinterpret_cast<const char*>(data), size)});
  h.unsubscribed(shard, sub);
  hearth_session_event closed{sizeof(hearth_session_event), 7, 1, 13};
  h.session_closed(shard, closed);
  h.session_freed(7, shard.session_slots_);
  h.guild_freed(9, shard.guild_slots_);
  return 0;
}
