#include "nodes/plugin_host.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <sstream>
#include <stdexcept>

#include "common/log_text.hpp"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;

// The versions this host speaks, newest first.
constexpr std::uint32_t kOfferedVersions[] = {HEARTH_PLUGIN_ABI_V1};

PluginContext* context_of(hearth_context* ctx) {
  return reinterpret_cast<PluginContext*>(ctx);
}
hearth_context* as_handle(PluginContext* ctx) {
  return reinterpret_cast<hearth_context*>(ctx);
}

std::string_view view(hearth_bytes b) {
  return b.data ? std::string_view(static_cast<const char*>(b.data), b.size) : std::string_view();
}

// ---- host services (hearth_host_api) ----

void svc_log(hearth_context* ctx, hearth_log_level level, const char* message) {
  const auto* c = context_of(ctx);
  // A plugin may log what a client sent: escaped, so it cannot forge lines.
  const std::string text = printable(message ? message : "", 4096);
  switch (level) {
    case HEARTH_LOG_DEBUG:
      spdlog::debug("plugin {}: {}", c->plugin->name, text);
      break;
    case HEARTH_LOG_INFO:
      spdlog::info("plugin {}: {}", c->plugin->name, text);
      break;
    case HEARTH_LOG_WARN:
      spdlog::warn("plugin {}: {}", c->plugin->name, text);
      break;
    default:
      spdlog::error("plugin {}: {}", c->plugin->name, text);
  }
}

const char* svc_config(hearth_context* ctx, const char* key) {
  if (!key) return nullptr;
  const auto& options = context_of(ctx)->plugin->options;
  auto it = options.find(key);
  return it == options.end() ? nullptr : it->second.c_str();
}

void svc_count(hearth_context* ctx, const char* name, uint64_t delta) {
  if (!name) return;
  LoadedPlugin* p = context_of(ctx)->plugin;
  std::lock_guard lock(p->mu);
  p->counters[name] += delta;
}

void svc_gauge(hearth_context* ctx, const char* name, uint64_t value) {
  if (!name) return;
  LoadedPlugin* p = context_of(ctx)->plugin;
  std::lock_guard lock(p->mu);
  p->counters[name] = value;
}

hearth_result svc_publish(hearth_context* ctx, uint64_t guild, uint64_t kind,
                          hearth_bytes payload) {
  auto* c = context_of(ctx);
  if (!c->shard) return HEARTH_ERROR;
  return c->shard->plugin_publish(guild, kind, view(payload)) ? HEARTH_OK : HEARTH_ERROR;
}

hearth_result svc_send_to_session(hearth_context* ctx, uint64_t session, uint64_t kind,
                                  hearth_bytes payload) {
  auto* c = context_of(ctx);
  if (!c->shard) return HEARTH_ERROR;
  return c->shard->plugin_send_to_session(session, kind, view(payload)) ? HEARTH_OK : HEARTH_ERROR;
}

void* svc_guild_slot(hearth_context* ctx, uint64_t guild) {
  auto* c = context_of(ctx);
  void** slot = c->shard ? c->shard->plugin_guild_slot(guild, c->plugin->index) : nullptr;
  return slot ? *slot : nullptr;
}

void svc_set_guild_slot(hearth_context* ctx, uint64_t guild, void* value) {
  auto* c = context_of(ctx);
  void** slot = c->shard ? c->shard->plugin_guild_slot(guild, c->plugin->index) : nullptr;
  if (slot) *slot = value;
}

void* svc_session_slot(hearth_context* ctx, uint64_t session) {
  auto* c = context_of(ctx);
  void** slot = c->shard ? c->shard->plugin_session_slot(session, c->plugin->index) : nullptr;
  return slot ? *slot : nullptr;
}

void svc_set_session_slot(hearth_context* ctx, uint64_t session, void* value) {
  auto* c = context_of(ctx);
  void** slot = c->shard ? c->shard->plugin_session_slot(session, c->plugin->index) : nullptr;
  if (slot) *slot = value;
}

uint64_t svc_set_timer(hearth_context* ctx, uint64_t delay_ms, uint64_t user_data) {
  auto* c = context_of(ctx);
  return c->shard ? c->shard->plugin_set_timer(c->plugin->index, delay_ms, user_data) : 0;
}

size_t svc_guild_members(hearth_context* ctx, uint64_t guild, uint64_t* sessions, uint64_t* users,
                         size_t capacity) {
  auto* c = context_of(ctx);
  return c->shard ? c->shard->plugin_guild_members(guild, sessions, users, capacity) : 0;
}

hearth_result svc_send_to_member(hearth_context* ctx, const char* node, uint64_t session,
                                 uint64_t kind, hearth_bytes payload) {
  auto* c = context_of(ctx);
  if (!c->shard || !node) return HEARTH_ERROR;
  return c->shard->plugin_send_to_member(node, session, kind, view(payload)) ? HEARTH_OK
                                                                             : HEARTH_ERROR;
}

hearth_result svc_set_subscription_data(hearth_context* ctx, uint64_t session, hearth_bytes data) {
  auto* c = context_of(ctx);
  if (!c->shard || data.size > 1024) return HEARTH_ERROR;
  return c->shard->plugin_set_subscription_data(session, c->plugin->index, view(data))
             ? HEARTH_OK
             : HEARTH_ERROR;
}

const hearth_host_api kApi = {
    sizeof(hearth_host_api),
    HEARTH_PLUGIN_ABI_CURRENT,
    &svc_log,
    &svc_config,
    &svc_count,
    &svc_publish,
    &svc_send_to_session,
    &svc_guild_slot,
    &svc_set_guild_slot,
    &svc_session_slot,
    &svc_set_session_slot,
    &svc_set_timer,
    &svc_guild_members,
    &svc_send_to_member,
    &svc_set_subscription_data,
    &svc_gauge,
};

// A hook exists when the plugin's table is large enough to hold it and set.
#define HOOK_PRESENT(hooks, field)                                                        \
  ((hooks).struct_size >= offsetof(hearth_plugin_hooks, field) + sizeof((hooks).field) && \
   (hooks).field != nullptr)

}  // namespace

const hearth_host_api& PluginHost::api() {
  return kApi;
}

PluginHost::PluginHost(std::vector<PluginSpec> specs, PluginLimits limits)
    : specs_(std::move(specs)), limits_(limits) {}

PluginHost::~PluginHost() {
  stop_and_unload();
}

bool PluginHost::load(const PluginSpec& spec, std::string* error) {
  void* handle = dlopen(spec.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    *error = std::string("cannot load: ") + dlerror();
    return false;
  }
  auto fail = [&](std::string why) {
    *error = std::move(why);
    dlclose(handle);
    return false;
  };
  const auto* build =
      static_cast<const hearth_plugin_build_info*>(dlsym(handle, HEARTH_PLUGIN_BUILD_SYMBOL));
  if (!build) {
    return fail("missing symbol '" HEARTH_PLUGIN_BUILD_SYMBOL
                "': not a Hearth plugin (use HEARTH_PLUGIN or HEARTH_PLUGIN_DECLARE_BUILD)");
  }
  if (build->magic != HEARTH_PLUGIN_MAGIC) return fail("bad magic in the build block");
  if (build->pointer_size != sizeof(void*)) {
    return fail("built for " + std::to_string(build->pointer_size * 8) + "-bit pointers");
  }
  bool known = false;
  for (auto v : kOfferedVersions) known |= v == build->abi_version;
  if (!known) {
    return fail("built for plugin ABI version " + std::to_string(build->abi_version) +
                "; this node supports version " + std::to_string(HEARTH_PLUGIN_ABI_CURRENT));
  }
  auto entry = reinterpret_cast<hearth_plugin_entry_fn>(dlsym(handle, HEARTH_PLUGIN_ENTRY_SYMBOL));
  if (!entry) return fail("missing symbol '" HEARTH_PLUGIN_ENTRY_SYMBOL "'");

  auto plugin = std::make_unique<LoadedPlugin>();
  plugin->name = spec.name;
  plugin->path = spec.path;
  plugin->description = build->description ? build->description : "";
  plugin->required = spec.required;
  plugin->fail_open = spec.fail_open;
  plugin->options = spec.options;
  plugin->handle = handle;
  plugin->index = plugins_.size();
  std::uint32_t chosen = 0;
  hearth_result r = HEARTH_ERROR;
  try {
    r = entry(&kApi, kOfferedVersions, std::size(kOfferedVersions), &chosen, &plugin->hooks);
  } catch (...) {
    return fail("its entry point threw an exception");
  }
  if (r != HEARTH_OK || chosen == 0) {
    return fail("refused every ABI version this node offers (" +
                std::to_string(HEARTH_PLUGIN_ABI_CURRENT) + ")");
  }
  if (plugin->hooks.struct_size < offsetof(hearth_plugin_hooks, on_node_start)) {
    return fail("hook table too small");
  }
  PluginContext ctx{this, plugin.get(), nullptr};
  if (HOOK_PRESENT(plugin->hooks, on_node_start)) {
    hearth_result started = HEARTH_ERROR;
    try {
      started = plugin->hooks.on_node_start(plugin->hooks.plugin, as_handle(&ctx));
    } catch (...) {
    }
    if (started != HEARTH_OK) return fail("its on_node_start failed");
  }
  spdlog::info("plugin {}: loaded from {} (ABI {}): {}", spec.name, spec.path, chosen,
               plugin->description);
  publish_hooks_ |= HOOK_PRESENT(plugin->hooks, on_publish);
  plugins_.push_back(std::move(plugin));
  return true;
}

void PluginHost::load_and_start() {
  for (const PluginSpec& spec : specs_) {
    std::string error;
    if (load(spec, &error)) continue;
    if (spec.required) {
      throw std::runtime_error("required plugin '" + spec.name + "' (" + spec.path + "): " + error);
    }
    spdlog::error("plugin {}: not loaded ({}): {}; the node goes on without it", spec.name,
                  spec.path, error);
  }
}

void PluginHost::stop_and_unload() {
  for (auto& p : plugins_) {
    // Even for a disabled plugin: it may have threads to stop before dlclose.
    if (HOOK_PRESENT(p->hooks, on_node_stop)) {
      PluginContext ctx{this, p.get(), nullptr};
      try {
        p->hooks.on_node_stop(p->hooks.plugin, as_handle(&ctx));
      } catch (...) {
      }
    }
  }
  for (auto& p : plugins_) {
    if (p->handle) dlclose(p->handle);
  }
  plugins_.clear();
}

void PluginHost::record_failure(LoadedPlugin& p, const char* hook, const std::string& why) {
  ++p.failures;
  const auto now = Clock::now();
  std::size_t recent = 0;
  {
    std::lock_guard lock(p.mu);
    p.recent_failures.push_back(now);
    while (!p.recent_failures.empty() && now - p.recent_failures.front() > limits_.failure_window) {
      p.recent_failures.pop_front();
    }
    recent = p.recent_failures.size();
  }
  spdlog::warn("plugin {}: {} failed: {} ({} in the last {} ms)", p.name, hook, why, recent,
               limits_.failure_window.count());
  if (recent >= limits_.failure_limit && !p.disabled.exchange(true)) {
    spdlog::error(
        "plugin {}: disabled after {} failures within {} ms; its hooks are no longer "
        "called",
        p.name, recent, limits_.failure_window.count());
  }
}

template <class F>
hearth_result PluginHost::invoke(LoadedPlugin& p, const char* hook, F&& call) {
  ++p.calls;
  const auto start = Clock::now();
  hearth_result r = HEARTH_ERROR;
  std::string why = "returned an error";
  try {
    r = call();
  } catch (const std::exception& e) {
    why = std::string("threw: ") + e.what();
  } catch (...) {
    why = "threw an exception";
  }
  const auto took = Clock::now() - start;
  if (took > limits_.hook_budget) {
    const auto n = ++p.slow;
    if ((n & (n - 1)) == 0) {  // 1st, 2nd, 4th, 8th...: logged without flooding
      spdlog::warn("plugin {}: {} took {} us, over its {} us budget ({} slow calls so far)", p.name,
                   hook, std::chrono::duration_cast<std::chrono::microseconds>(took).count(),
                   limits_.hook_budget.count(), n);
    }
  }
  if (r != HEARTH_OK) record_failure(p, hook, why);
  return r;
}

std::optional<std::string> PluginHost::identify(PluginShardServices& shard,
                                                hearth_identify_event& ev) {
  for (auto& p : plugins_) {
    if (!HOOK_PRESENT(p->hooks, on_identify)) continue;
    if (p->disabled) {
      if (p->fail_open) continue;
      return "plugin " + p->name + " is disabled; sessions are refused until the node restarts";
    }
    PluginContext ctx{this, p.get(), &shard};
    ev.reject_reason = nullptr;
    const auto r = invoke(*p, "on_identify", [&] {
      return p->hooks.on_identify(p->hooks.plugin, as_handle(&ctx), &ev);
    });
    if (r != HEARTH_OK) {
      if (p->fail_open) continue;
      return "plugin " + p->name + " failed to check the session; refused";
    }
    if (ev.reject_reason) return std::string(ev.reject_reason);
  }
  return std::nullopt;
}

void PluginHost::session_closed(PluginShardServices& shard, const hearth_session_event& ev) {
  for (auto& p : plugins_) {
    if (p->disabled || !HOOK_PRESENT(p->hooks, on_session_close)) continue;
    PluginContext ctx{this, p.get(), &shard};
    invoke(*p, "on_session_close",
           [&] { return p->hooks.on_session_close(p->hooks.plugin, as_handle(&ctx), &ev); });
  }
}

std::optional<std::string> PluginHost::subscribed(PluginShardServices& shard,
                                                  hearth_subscription_event ev,
                                                  const std::vector<std::string_view>& data) {
  std::optional<std::string> refusal;
  std::size_t called = 0;  // plugins before this index accepted
  for (; called < plugins_.size() && !refusal; ++called) {
    LoadedPlugin& p = *plugins_[called];
    if (!HOOK_PRESENT(p.hooks, on_subscribe)) continue;
    if (p.disabled) {
      if (!p.fail_open) refusal = "plugin " + p.name + " is disabled; subscriptions are refused";
      continue;
    }
    PluginContext ctx{this, &p, &shard};
    const std::string_view mine = p.index < data.size() ? data[p.index] : std::string_view();
    ev.subscription_data = {mine.data(), mine.size()};
    const char* veto = nullptr;
    ev.reject_reason = &veto;
    const auto r = invoke(p, "on_subscribe", [&] {
      return p.hooks.on_subscribe(p.hooks.plugin, as_handle(&ctx), &ev);
    });
    if (r != HEARTH_OK) {
      if (!p.fail_open) refusal = "plugin " + p.name + " failed to check the subscription";
    } else if (veto) {
      refusal = std::string(veto);
    }
    if (refusal) break;
  }
  if (!refusal) return std::nullopt;
  ev.reject_reason = nullptr;
  ev.subscription_data = {nullptr, 0};
  for (std::size_t i = 0; i < called; ++i) {
    LoadedPlugin& p = *plugins_[i];
    if (p.disabled || !HOOK_PRESENT(p.hooks, on_subscribe) ||
        !HOOK_PRESENT(p.hooks, on_unsubscribe))
      continue;
    PluginContext ctx{this, &p, &shard};
    invoke(p, "on_unsubscribe",
           [&] { return p.hooks.on_unsubscribe(p.hooks.plugin, as_handle(&ctx), &ev); });
  }
  return refusal;
}

void PluginHost::unsubscribed(PluginShardServices& shard, const hearth_subscription_event& ev) {
  for (auto& p : plugins_) {
    if (p->disabled || !HOOK_PRESENT(p->hooks, on_unsubscribe)) continue;
    PluginContext ctx{this, p.get(), &shard};
    invoke(*p, "on_unsubscribe",
           [&] { return p->hooks.on_unsubscribe(p->hooks.plugin, as_handle(&ctx), &ev); });
  }
}

PluginHost::PublishOutcome PluginHost::publish(PluginShardServices& shard, std::uint64_t guild,
                                               std::uint64_t kind, std::string_view payload,
                                               bool from_plugin) {
  PublishOutcome out;
  std::string current;  // holds a replacement while later plugins look at it
  std::string_view bytes = payload;
  for (auto& p : plugins_) {
    if (p->disabled || !HOOK_PRESENT(p->hooks, on_publish)) continue;
    PluginContext ctx{this, p.get(), &shard};
    hearth_publish_event ev{};
    ev.struct_size = sizeof(ev);
    ev.guild_id = guild;
    ev.kind = kind;
    ev.payload = {bytes.data(), bytes.size()};
    ev.from_plugin = from_plugin ? 1 : 0;
    hearth_publish_verdict verdict = HEARTH_PUBLISH_PASS;
    const auto r = invoke(*p, "on_publish", [&] {
      return p->hooks.on_publish(p->hooks.plugin, as_handle(&ctx), &ev, &verdict);
    });
    if (r != HEARTH_OK) continue;  // a failing plugin does not block the event
    if (ev.exclude_user != 0) out.exclude_user = ev.exclude_user;
    if (verdict == HEARTH_PUBLISH_DROP) {
      out.dropped = true;
      out.reason = ev.drop_reason ? ev.drop_reason : "dropped by plugin " + p->name;
      return out;
    }
    if (verdict == HEARTH_PUBLISH_REPLACE) {
      current.assign(view(ev.replacement));
      bytes = current;
      out.replacement = current;
      // A plugin built before replacement_kind existed leaves it 0: kind kept.
      if (ev.replacement_kind != 0) out.kind = ev.replacement_kind;
    }
  }
  return out;
}

bool PluginHost::message(PluginShardServices& shard, const hearth_message_event& ev) {
  for (auto& p : plugins_) {
    if (p->disabled || !HOOK_PRESENT(p->hooks, on_message)) continue;
    bool mine = false;
    for (std::size_t i = 0; i < p->hooks.message_kind_count; ++i) {
      mine |= p->hooks.message_kinds[i] == ev.kind;
    }
    if (!mine) continue;
    PluginContext ctx{this, p.get(), &shard};
    invoke(*p, "on_message",
           [&] { return p->hooks.on_message(p->hooks.plugin, as_handle(&ctx), &ev); });
    return true;
  }
  return false;
}

void PluginHost::timer(PluginShardServices& shard, std::size_t plugin,
                       const hearth_timer_event& ev) {
  if (plugin >= plugins_.size()) return;
  LoadedPlugin& p = *plugins_[plugin];
  if (p.disabled || !HOOK_PRESENT(p.hooks, on_timer)) return;
  PluginContext ctx{this, &p, &shard};
  invoke(p, "on_timer", [&] { return p.hooks.on_timer(p.hooks.plugin, as_handle(&ctx), &ev); });
}

void PluginHost::guild_freed(std::uint64_t guild, void* const* slots) {
  for (auto& p : plugins_) {
    void* slot = slots[p->index];
    if (!slot || !HOOK_PRESENT(p->hooks, on_guild_free)) continue;
    // Called even for a disabled plugin: the slot is its memory to free.
    try {
      p->hooks.on_guild_free(p->hooks.plugin, guild, slot);
    } catch (...) {
    }
  }
}

void PluginHost::session_freed(std::uint64_t session, void* const* slots) {
  for (auto& p : plugins_) {
    void* slot = slots[p->index];
    if (!slot || !HOOK_PRESENT(p->hooks, on_session_free)) continue;
    try {
      p->hooks.on_session_free(p->hooks.plugin, session, slot);
    } catch (...) {
    }
  }
}

void PluginHost::collect_stats() {
  for (auto& p : plugins_) {
    if (p->disabled || !HOOK_PRESENT(p->hooks, on_stats)) continue;
    PluginContext ctx{this, p.get(), nullptr};
    invoke(*p, "on_stats", [&] { return p->hooks.on_stats(p->hooks.plugin, as_handle(&ctx)); });
  }
}

std::string PluginHost::summary() const {
  std::ostringstream out;
  for (const auto& p : plugins_) {
    out << " plugin." << p->name << "={calls=" << p->calls << " failures=" << p->failures
        << " slow=" << p->slow << (p->disabled ? " DISABLED" : "");
    std::lock_guard lock(p->mu);
    for (const auto& [name, value] : p->counters) out << " " << name << "=" << value;
    out << "}";
  }
  return out.str();
}

}  // namespace hearth
