// Loads plugins (shared objects speaking hearth/plugin.h), calls their hooks
// with containment, and keeps their counters. One PluginHost per node; hook
// dispatchers are called from shard threads concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hearth/plugin.h"

namespace hearth {

struct PluginSpec {
  std::string name;
  std::string path;
  bool required = false;
  std::map<std::string, std::string> options;
  // on_identify and on_subscribe fail closed (a failing or disabled plugin
  // refuses) unless this is set (--plugin-fail-open NAME).
  bool fail_open = false;
};

struct PluginLimits {
  std::uint32_t failure_limit = 10;  // failures within the window that disable a plugin
  std::chrono::milliseconds failure_window{60000};
  std::chrono::microseconds hook_budget{2000};  // a hook slower than this is counted
};

// What plugin services need from the shard a hook runs on. Implemented by Shard.
class PluginShardServices {
 public:
  virtual ~PluginShardServices() = default;
  virtual bool plugin_publish(std::uint64_t guild, std::uint64_t kind,
                              std::string_view payload) = 0;
  virtual bool plugin_send_to_session(std::uint64_t session, std::uint64_t kind,
                                      std::string_view payload) = 0;
  virtual void** plugin_guild_slot(std::uint64_t guild, std::size_t plugin) = 0;
  virtual void** plugin_session_slot(std::uint64_t session, std::size_t plugin) = 0;
  virtual std::uint64_t plugin_set_timer(std::size_t plugin, std::uint64_t delay_ms,
                                         std::uint64_t user_data) = 0;
  virtual bool plugin_send_to_member(const std::string& node, std::uint64_t session,
                                     std::uint64_t kind, std::string_view payload) = 0;
  virtual bool plugin_set_subscription_data(std::uint64_t session, std::size_t plugin,
                                            std::string_view data) = 0;
  virtual std::size_t plugin_guild_members(std::uint64_t guild, std::uint64_t* sessions,
                                           std::uint64_t* users, std::size_t capacity) = 0;
};

class PluginHost;

// One loaded shared object.
class LoadedPlugin {
 public:
  std::string name;
  std::string path;
  std::string description;
  std::size_t index = 0;  // slot index in guilds and sessions
  bool required = false;
  bool fail_open = false;
  std::map<std::string, std::string> options;
  hearth_plugin_hooks hooks{};
  void* handle = nullptr;
  std::atomic<bool> disabled{false};
  std::atomic<std::uint64_t> calls{0}, failures{0}, slow{0};

  std::mutex mu;  // guards what follows
  std::deque<std::chrono::steady_clock::time_point> recent_failures;
  std::map<std::string, std::uint64_t> counters;
};

// The context handed to hooks (hearth_context is opaque to plugins).
struct PluginContext {
  PluginHost* host;
  LoadedPlugin* plugin;
  PluginShardServices* shard;  // null on the main thread
};

class PluginHost {
 public:
  PluginHost(std::vector<PluginSpec> specs, PluginLimits limits);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads and starts every plugin. A required plugin that fails throws
  // std::runtime_error with the reason; an optional one is logged and skipped.
  void load_and_start();
  // on_node_stop for every plugin, then dlclose.
  void stop_and_unload();

  bool empty() const { return plugins_.empty(); }
  std::size_t size() const { return plugins_.size(); }
  bool has_publish_hooks() const { return publish_hooks_; }

  // Hook dispatch. Each is a no-op for plugins without that hook or disabled,
  // except identify and subscribed, which fail closed (docs/plugins.md,
  // "When a plugin fails"): a plugin with the hook that fails, or is
  // disabled, refuses unless it was loaded fail-open.
  // The first rejection reason, if any plugin rejected.
  std::optional<std::string> identify(PluginShardServices& shard, hearth_identify_event& ev);
  void session_closed(PluginShardServices& shard, const hearth_session_event& ev);
  // `data`: each plugin's subscription data, by plugin index. The first
  // refusal (a veto, a failure, a disabled plugin), or nullopt: the
  // subscription stands. Plugins that accepted before a refusal are told
  // on_unsubscribe, so none keeps a member the guild does not have.
  std::optional<std::string> subscribed(PluginShardServices& shard, hearth_subscription_event ev,
                                        const std::vector<std::string_view>& data);
  void unsubscribed(PluginShardServices& shard, const hearth_subscription_event& ev);

  struct PublishOutcome {
    bool dropped = false;
    std::string reason;
    std::optional<std::string> replacement;  // the payload to fan out instead
    std::uint64_t kind = 0;                  // with a replacement: its kind (0: unchanged)
    std::uint64_t exclude_user = 0;          // sessions of this user skip the event
  };
  PublishOutcome publish(PluginShardServices& shard, std::uint64_t guild, std::uint64_t kind,
                         std::string_view payload, bool from_plugin);
  // False when no live plugin registered `kind`.
  bool message(PluginShardServices& shard, const hearth_message_event& ev);
  void timer(PluginShardServices& shard, std::size_t plugin, const hearth_timer_event& ev);
  void guild_freed(std::uint64_t guild, void* const* slots);
  void session_freed(std::uint64_t session, void* const* slots);

  // Lets each plugin report its gauges (on_stats); main thread.
  void collect_stats();
  // One line per plugin: calls, failures, slow hooks, disabled, counters and gauges.
  std::string summary() const;
  const std::vector<std::unique_ptr<LoadedPlugin>>& plugins() const { return plugins_; }

  static const hearth_host_api& api();

 private:
  template <class F>
  hearth_result invoke(LoadedPlugin& p, const char* hook, F&& call);
  void record_failure(LoadedPlugin& p, const char* hook, const std::string& why);
  bool load(const PluginSpec& spec, std::string* error);

  std::vector<PluginSpec> specs_;
  PluginLimits limits_;
  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
  bool publish_hooks_ = false;
};

}  // namespace hearth
