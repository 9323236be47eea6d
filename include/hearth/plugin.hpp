// Header-only C++ layer over the plugin ABI (hearth/plugin.h).
//
// Derive from hearth::Plugin, override the hooks you need, and export the
// class with HEARTH_PLUGIN(MyPlugin, "name", "one-line description"). Every
// hook is wrapped so that no exception crosses into the host: an exception
// becomes HEARTH_ERROR, which the host logs and counts (docs/plugins.md).
// Threads are as plugin.h says: guild hooks on the guild's shard, session
// hooks on the session's shard, possibly concurrently across shards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hearth/plugin.h"

namespace hearth {

// What a hook may ask of the node; valid during the hook call only.
class Host {
 public:
  Host(const hearth_host_api* api, hearth_context* ctx) : api_(api), ctx_(ctx) {}

  void log(hearth_log_level level, const std::string& message) const {
    api_->log(ctx_, level, message.c_str());
  }
  void info(const std::string& message) const { log(HEARTH_LOG_INFO, message); }
  void warn(const std::string& message) const { log(HEARTH_LOG_WARN, message); }
  // The plugin option, or `fallback` when it is not set.
  std::string config(const char* key, std::string fallback = {}) const {
    const char* v = api_->config(ctx_, key);
    return v ? std::string(v) : fallback;
  }
  void count(const char* name, std::uint64_t delta = 1) const { api_->count(ctx_, name, delta); }
  // A no-op on a host older than the gauge service.
  void gauge(const char* name, std::uint64_t value) const {
    if (api_->struct_size >= offsetof(hearth_host_api, gauge) + sizeof(api_->gauge) &&
        api_->gauge) {
      api_->gauge(ctx_, name, value);
    }
  }
  bool publish(std::uint64_t guild, std::uint64_t kind, std::string_view payload) const {
    return api_->publish(ctx_, guild, kind, {payload.data(), payload.size()}) == HEARTH_OK;
  }
  bool send_to_session(std::uint64_t session, std::uint64_t kind, std::string_view payload) const {
    return api_->send_to_session(ctx_, session, kind, {payload.data(), payload.size()}) ==
           HEARTH_OK;
  }
  void* guild_slot(std::uint64_t guild) const { return api_->guild_slot(ctx_, guild); }
  void set_guild_slot(std::uint64_t guild, void* v) const { api_->set_guild_slot(ctx_, guild, v); }
  void* session_slot(std::uint64_t session) const { return api_->session_slot(ctx_, session); }
  void set_session_slot(std::uint64_t session, void* v) const {
    api_->set_session_slot(ctx_, session, v);
  }
  std::uint64_t set_timer(std::uint64_t delay_ms, std::uint64_t user_data = 0) const {
    return api_->set_timer(ctx_, delay_ms, user_data);
  }
  // Fills up to `capacity` members of a guild of this shard; returns the total.
  std::size_t guild_members(std::uint64_t guild, std::uint64_t* sessions, std::uint64_t* users,
                            std::size_t capacity) const {
    return api_->guild_members(ctx_, guild, sessions, users, capacity);
  }
  bool set_subscription_data(std::uint64_t session, std::string_view data) const {
    return api_->set_subscription_data(ctx_, session, {data.data(), data.size()}) == HEARTH_OK;
  }
  // To a session on any node, e.g. a subscriber seen in on_subscribe.
  bool send_to_member(const char* session_node, std::uint64_t session, std::uint64_t kind,
                      std::string_view payload) const {
    return api_->send_to_member(ctx_, session_node, session, kind,
                                {payload.data(), payload.size()}) == HEARTH_OK;
  }

 private:
  const hearth_host_api* api_;
  hearth_context* ctx_;
};

inline std::string_view view(hearth_bytes b) {
  return {static_cast<const char*>(b.data), b.size};
}

class Plugin {
 public:
  virtual ~Plugin() = default;

  // Return false (or throw) to refuse loading.
  virtual bool on_node_start(Host&) { return true; }
  virtual void on_node_stop(Host&) {}
  // Return a non-empty reason to reject the session.
  virtual std::string on_identify(Host&, const hearth_identify_event&) { return {}; }
  virtual void on_session_close(Host&, const hearth_session_event&) {}
  // Call reject_subscription(ev, reason) in it to veto the subscription.
  virtual void on_subscribe(Host&, const hearth_subscription_event&) {}
  virtual void on_unsubscribe(Host&, const hearth_subscription_event&) {}

  struct PublishDecision {
    hearth_publish_verdict verdict = HEARTH_PUBLISH_PASS;
    std::string text;                // drop reason, or the replacement payload
    std::uint64_t new_kind = 0;      // with replace: the event kind to fan out (0: unchanged)
    std::uint64_t exclude_user = 0;  // sessions of this user skip the event (0: none)
    static PublishDecision pass() { return {}; }
    static PublishDecision drop(std::string reason) {
      return {HEARTH_PUBLISH_DROP, std::move(reason)};
    }
    static PublishDecision replace(std::string payload, std::uint64_t kind = 0) {
      return {HEARTH_PUBLISH_REPLACE, std::move(payload), kind};
    }
  };
  virtual PublishDecision on_publish(Host&, const hearth_publish_event&) { return {}; }
  virtual void on_timer(Host&, const hearth_timer_event&) {}
  virtual void on_message(Host&, const hearth_message_event&) {}
  // Client message kinds this plugin answers (PLUGIN_MESSAGE).
  virtual std::vector<std::uint64_t> message_kinds() const { return {}; }
  virtual void on_guild_free(std::uint64_t, void*) {}
  virtual void on_session_free(std::uint64_t, void*) {}
  // Before each stats line, on the node's main thread (report gauges here).
  virtual void on_stats(Host&) {}

  // ---- glue below: the C hooks the host calls ----

  // `P` is the plugin's own class (HEARTH_PLUGIN passes it): on_identify and
  // on_subscribe are offered to the host only when P overrides them, because
  // the host fails closed on those two (a disabled plugin with them refuses).
  template <class P>
  static hearth_result entry(P* self, const hearth_host_api* host, const uint32_t* offered,
                             size_t offered_count, uint32_t* chosen, hearth_plugin_hooks* hooks) {
    *chosen = 0;
    for (size_t i = 0; i < offered_count; ++i) {
      if (offered[i] == HEARTH_PLUGIN_ABI_V1) *chosen = HEARTH_PLUGIN_ABI_V1;
    }
    if (*chosen == 0) return HEARTH_ERROR;
    self->host_ = host;
    try {
      self->kinds_ = self->message_kinds();
    } catch (...) {
      return HEARTH_ERROR;
    }
    *hooks = hearth_plugin_hooks{};
    hooks->struct_size = sizeof(hearth_plugin_hooks);
    hooks->plugin = self;
    hooks->on_node_start = &c_node_start;
    hooks->on_node_stop = &c_node_stop;
    constexpr bool unknown_class = std::is_same_v<P, Plugin>;
    if (unknown_class || !std::is_same_v<decltype(&P::on_identify), decltype(&Plugin::on_identify)>)
      hooks->on_identify = &c_identify;
    hooks->on_session_close = &c_session_close;
    if (unknown_class ||
        !std::is_same_v<decltype(&P::on_subscribe), decltype(&Plugin::on_subscribe)>)
      hooks->on_subscribe = &c_subscribe;
    hooks->on_unsubscribe = &c_unsubscribe;
    hooks->on_publish = &c_publish;
    hooks->on_timer = &c_timer;
    hooks->on_message = &c_message;
    hooks->message_kinds = self->kinds_.data();
    hooks->message_kind_count = self->kinds_.size();
    hooks->on_guild_free = &c_guild_free;
    hooks->on_session_free = &c_session_free;
    hooks->on_stats = &c_stats;
    return HEARTH_OK;
  }

 protected:
  // From on_subscribe: refuse this subscription; the client gets SUBSCRIBED
  // with code REJECTED and `reason`. A no-op on a host older than the veto.
  static void reject_subscription(const hearth_subscription_event& ev, std::string reason) {
    if (ev.struct_size <
            offsetof(hearth_subscription_event, reject_reason) + sizeof(ev.reject_reason) ||
        ev.reject_reason == nullptr) {
      return;
    }
    // thread_local: shards call on_subscribe concurrently; the host copies it.
    thread_local std::string kept;
    kept = reason.empty() ? std::string("refused") : std::move(reason);
    *ev.reject_reason = kept.c_str();
  }

 private:
  // Runs a hook body; an exception is logged through the host (with its
  // message) and becomes HEARTH_ERROR, which the host counts.
  template <class F>
  static hearth_result guarded(void* p, hearth_context* ctx, F&& f) noexcept {
    try {
      f();
      return HEARTH_OK;
    } catch (const std::exception& e) {
      report(p, ctx, e.what());
    } catch (...) {
      report(p, ctx, "unknown exception");
    }
    return HEARTH_ERROR;
  }
  static void report(void* p, hearth_context* ctx, const char* what) noexcept {
    try {
      if (ctx) self(p)->host_->log(ctx, HEARTH_LOG_ERROR, (std::string("threw: ") + what).c_str());
    } catch (...) {
    }
  }
  static Plugin* self(void* p) { return static_cast<Plugin*>(p); }
  Host host(hearth_context* ctx) const { return Host(host_, ctx); }

  static hearth_result c_node_start(void* p, hearth_context* ctx) noexcept {
    bool ok = false;
    const hearth_result r = guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      ok = self(p)->on_node_start(h);
    });
    return r == HEARTH_OK && ok ? HEARTH_OK : HEARTH_ERROR;
  }
  static void c_node_stop(void* p, hearth_context* ctx) noexcept {
    guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_node_stop(h);
    });
  }
  static hearth_result c_identify(void* p, hearth_context* ctx,
                                  hearth_identify_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->reason_ = self(p)->on_identify(h, *ev);
      ev->reject_reason = self(p)->reason_.empty() ? nullptr : self(p)->reason_.c_str();
    });
  }
  static hearth_result c_session_close(void* p, hearth_context* ctx,
                                       const hearth_session_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_session_close(h, *ev);
    });
  }
  static hearth_result c_subscribe(void* p, hearth_context* ctx,
                                   const hearth_subscription_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_subscribe(h, *ev);
    });
  }
  static hearth_result c_unsubscribe(void* p, hearth_context* ctx,
                                     const hearth_subscription_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_unsubscribe(h, *ev);
    });
  }
  static hearth_result c_publish(void* p, hearth_context* ctx, hearth_publish_event* ev,
                                 hearth_publish_verdict* verdict) noexcept {
    // thread_local: different shards may publish through this plugin at once.
    thread_local std::string text;
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      PublishDecision d = self(p)->on_publish(h, *ev);
      text = std::move(d.text);
      *verdict = d.verdict;
      if (d.verdict == HEARTH_PUBLISH_DROP) ev->drop_reason = text.c_str();
      if (d.verdict == HEARTH_PUBLISH_REPLACE) {
        ev->replacement = {text.data(), text.size()};
        ev->replacement_kind = d.new_kind;
      }
      if (d.exclude_user != 0) ev->exclude_user = d.exclude_user;
    });
  }
  static hearth_result c_timer(void* p, hearth_context* ctx,
                               const hearth_timer_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_timer(h, *ev);
    });
  }
  static hearth_result c_message(void* p, hearth_context* ctx,
                                 const hearth_message_event* ev) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_message(h, *ev);
    });
  }
  static hearth_result c_stats(void* p, hearth_context* ctx) noexcept {
    return guarded(p, ctx, [&] {
      Host h = self(p)->host(ctx);
      self(p)->on_stats(h);
    });
  }
  static void c_guild_free(void* p, uint64_t guild, void* slot) noexcept {
    guarded(p, nullptr, [&] { self(p)->on_guild_free(guild, slot); });
  }
  static void c_session_free(void* p, uint64_t session, void* slot) noexcept {
    guarded(p, nullptr, [&] { self(p)->on_session_free(session, slot); });
  }

  const hearth_host_api* host_ = nullptr;
  std::vector<std::uint64_t> kinds_;
  static thread_local inline std::string reason_;
};

}  // namespace hearth

// Exports a Plugin subclass: the build block and the entry point. The
// instance lives until the host unloads the shared object.
#define HEARTH_PLUGIN(Class, name, description)                                               \
  HEARTH_PLUGIN_DECLARE_BUILD(name, description);                                             \
  extern "C" HEARTH_PLUGIN_EXPORT hearth_result hearth_plugin_entry(                          \
      const hearth_host_api* host, const uint32_t* offered, size_t offered_count,             \
      uint32_t* chosen, hearth_plugin_hooks* hooks) {                                         \
    try {                                                                                     \
      static Class instance;                                                                  \
      return ::hearth::Plugin::entry(&instance, host, offered, offered_count, chosen, hooks); \
    } catch (...) {                                                                           \
      return HEARTH_ERROR; /* a throwing constructor refuses the plugin */                    \
    }                                                                                         \
  }
