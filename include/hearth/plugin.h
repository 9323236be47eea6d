/* Hearth plugin ABI.
 *
 * The promise: nothing declared in this file changes meaning once released.
 * New functions, hooks and fields are only ever appended; every table and
 * event struct starts with its own size, so a host and a plugin built against
 * different releases of this header still agree on what each side may touch.
 * Plain C: no C++ types, exceptions or allocator crosses this boundary.
 *
 * Life of a plugin (docs/plugins.md has the full guide):
 *  1. The node dlopen()s the shared object with RTLD_LOCAL and reads the
 *     exported `hearth_plugin_build` block. A block with the wrong magic or an
 *     incompatible build is refused before any plugin code runs.
 *  2. The node calls `hearth_plugin_entry` once, offering the ABI versions it
 *     speaks; the plugin picks one and fills a hook table.
 *  3. `on_node_start` runs; a non-zero return refuses the plugin (a required
 *     plugin then stops the node; an optional one is unloaded).
 *  4. Hooks run as events happen (threads below), then `on_node_stop`.
 *
 * Threads: hooks about one guild run on the shard thread that owns the guild,
 * hooks about one session on the shard that owns the session; different
 * shards call the same hook concurrently, so state shared between guilds or
 * sessions needs the plugin's own locking. on_node_start and on_node_stop run
 * on the node's main thread with no shard running hooks.
 *
 * What a plugin may keep between calls: its own state (the `plugin` pointer it
 * returns in its hook table), values it stored in guild or session slots, and
 * timer ids. Not: a hearth_context*, an event struct, or any hearth_bytes; they
 * are valid only until the hook returns. Strings a plugin hands back in an
 * event (reject_reason, drop_reason, replacement) must stay valid until the
 * hook returns; the host copies them.
 *
 * Containment: a hook returns HEARTH_OK or an error. An error (or, through the
 * C++ wrapper, an exception) is logged and counted against the plugin; after
 * `failure_limit` failures within `failure_window_ms` (node options) the node
 * disables the plugin and stops calling it, except on_node_stop and the slot
 * free hooks, so that it can release what it holds before it is unloaded.
 * A hook that runs longer than its time budget is counted and logged. None
 * of this disturbs other plugins or clients. A plugin must not call exit(),
 * abort() or longjmp out of a hook.
 */
#ifndef HEARTH_PLUGIN_H
#define HEARTH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI versions. A host lists those it supports; a plugin picks one. */
#define HEARTH_PLUGIN_ABI_V1 1u
#define HEARTH_PLUGIN_ABI_CURRENT HEARTH_PLUGIN_ABI_V1

#define HEARTH_PLUGIN_MAGIC 0x48525448u /* "HRTH" */

#if defined(_WIN32)
#define HEARTH_PLUGIN_EXPORT __declspec(dllexport)
#else
#define HEARTH_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define HEARTH_EXTERN_C extern "C"
#else
#define HEARTH_EXTERN_C
#endif

/* Exported by every plugin as the constant `hearth_plugin_build`
 * (HEARTH_PLUGIN_DECLARE_BUILD defines it). Read before any plugin code runs. */
typedef struct hearth_plugin_build_info {
  uint32_t magic;          /* HEARTH_PLUGIN_MAGIC */
  uint32_t struct_size;    /* sizeof(hearth_plugin_build_info) of the plugin's header */
  uint32_t abi_version;    /* HEARTH_PLUGIN_ABI_CURRENT of the plugin's header */
  uint32_t pointer_size;   /* sizeof(void*) */
  const char* name;        /* short plugin name, e.g. "wordfilter" */
  const char* description; /* one line for logs */
} hearth_plugin_build_info;

#define HEARTH_PLUGIN_DECLARE_BUILD(name_, description_)                                      \
  HEARTH_EXTERN_C HEARTH_PLUGIN_EXPORT const hearth_plugin_build_info hearth_plugin_build = { \
      HEARTH_PLUGIN_MAGIC,                                                                    \
      (uint32_t)sizeof(hearth_plugin_build_info),                                             \
      HEARTH_PLUGIN_ABI_CURRENT,                                                              \
      (uint32_t)sizeof(void*),                                                                \
      (name_),                                                                                \
      (description_)}

/* Hook results. */
typedef enum hearth_result {
  HEARTH_OK = 0,
  HEARTH_ERROR = 1, /* the hook failed; counted for containment */
} hearth_result;

/* What on_publish decides about an event. */
typedef enum hearth_publish_verdict {
  HEARTH_PUBLISH_PASS = 0,    /* fan out unchanged */
  HEARTH_PUBLISH_DROP = 1,    /* drop; the publisher's ack carries the reason */
  HEARTH_PUBLISH_REPLACE = 2, /* fan out the payload the hook set instead */
} hearth_publish_verdict;

typedef enum hearth_log_level {
  HEARTH_LOG_DEBUG = 0,
  HEARTH_LOG_INFO = 1,
  HEARTH_LOG_WARN = 2,
  HEARTH_LOG_ERROR = 3,
} hearth_log_level;

/* Opaque: a hook's view of the node, valid only during that hook call. */
typedef struct hearth_context hearth_context;

/* Bytes owned by whoever passed them; valid for the duration of the call. */
typedef struct hearth_bytes {
  const void* data;
  size_t size;
} hearth_bytes;

/* ----------------------------------------------------------------- events */

typedef struct hearth_identify_event {
  size_t struct_size;
  uint64_t session_id;
  uint64_t user_id;
  hearth_bytes token;
  const uint64_t* guilds;
  size_t guild_count;
  /* Out: set to reject the session. The text (copied by the host) goes to the
   * client in ERROR(REJECTED). Leave NULL to accept. */
  const char* reject_reason;
  /* Appended in ABI v1 (check struct_size): IDENTIFY's optional `presence`
   * field (docs/protocol.md) as its MessagePack encoding, untouched and
   * unvalidated beyond being an array; empty when the client sent none.
   * Valid during the hook only. */
  hearth_bytes presence;
} hearth_identify_event;

typedef struct hearth_session_event {
  size_t struct_size;
  uint64_t session_id;
  uint64_t user_id;
  uint32_t close_code; /* on_session_close: the protocol code it closed with */
} hearth_session_event;

typedef struct hearth_subscription_event {
  size_t struct_size;
  uint64_t guild_id;
  uint64_t session_id;
  uint64_t user_id;
  const char* session_node; /* node hosting the session */
  /* on_subscribe: what a session-side plugin attached with
   * set_subscription_data (empty if nothing). It travels with every
   * SUBSCRIBE, so a guild that moves to another node is rebuilt with it. */
  hearth_bytes subscription_data;
  /* Appended in ABI v1 (check struct_size): in on_subscribe, a place for a
   * veto. Set *reject_reason to a text to refuse the subscription: the
   * client gets SUBSCRIBED with code REJECTED and this text (copied by the
   * host; keep it valid until the hook returns). NULL in on_unsubscribe. */
  const char** reject_reason;
} hearth_subscription_event;

typedef struct hearth_publish_event {
  size_t struct_size;
  uint64_t guild_id;
  uint64_t kind;
  hearth_bytes payload;
  /* Out, with HEARTH_PUBLISH_DROP: why (copied by the host; may be NULL). */
  const char* drop_reason;
  /* Out, with HEARTH_PUBLISH_REPLACE: the new payload (copied by the host). */
  hearth_bytes replacement;
  /* Out, with HEARTH_PUBLISH_REPLACE: a new event kind, or 0 to keep `kind`. */
  uint64_t replacement_kind;
  /* 1 when a plugin published it (host publish service), 0 for a publisher. */
  uint32_t from_plugin;
  /* Out, with PASS or REPLACE: sessions of this user do not receive the
   * event (0: everyone does). Skipping costs them no sequence number. */
  uint64_t exclude_user;
} hearth_publish_event;

/* A client's PLUGIN_MESSAGE of a kind this plugin registered. */
typedef struct hearth_message_event {
  size_t struct_size;
  uint64_t session_id;
  uint64_t user_id;
  uint64_t kind;
  hearth_bytes payload;
} hearth_message_event;

typedef struct hearth_timer_event {
  size_t struct_size;
  uint64_t timer_id;
  uint64_t user_data;
} hearth_timer_event;

/* ---------------------------------------------------------- host services */

typedef struct hearth_host_api {
  size_t struct_size; /* check before using a field added after v1 */
  uint32_t abi_version;

  /* Logging through the node's log, prefixed with the plugin's name. */
  void (*log)(hearth_context* ctx, hearth_log_level level, const char* message);

  /* This plugin's option `key` (node option --plugin-option NAME.KEY=VALUE),
   * or NULL. The string lives as long as the plugin is loaded. */
  const char* (*config)(hearth_context* ctx, const char* key);

  /* Adds `delta` to the plugin's counter `name` (shown in the node's stats). */
  void (*count)(hearth_context* ctx, const char* name, uint64_t delta);

  /* Publishes an event to a guild, as a publisher would (no ack). */
  hearth_result (*publish)(hearth_context* ctx, uint64_t guild_id, uint64_t kind,
                           hearth_bytes payload);

  /* Sends PLUGIN_MESSAGE(kind, payload) to a session hosted on this node.
   * HEARTH_ERROR when the session is not live here. Only from hooks running
   * on the session's shard (on_identify, on_session_close, on_message). */
  hearth_result (*send_to_session)(hearth_context* ctx, uint64_t session_id, uint64_t kind,
                                   hearth_bytes payload);

  /* Per-guild and per-session slots: one pointer per plugin, kept by the
   * host, handed back to on_guild_free / on_session_free when the guild or
   * session ends. Only from hooks running on the owning shard. */
  void* (*guild_slot)(hearth_context* ctx, uint64_t guild_id);
  void (*set_guild_slot)(hearth_context* ctx, uint64_t guild_id, void* value);
  void* (*session_slot)(hearth_context* ctx, uint64_t session_id);
  void (*set_session_slot)(hearth_context* ctx, uint64_t session_id, void* value);

  /* Calls on_timer on this shard after `delay_ms`; returns a timer id. */
  uint64_t (*set_timer)(hearth_context* ctx, uint64_t delay_ms, uint64_t user_data);

  /* Members of a guild owned by this shard: fills up to `capacity` session
   * ids and their users; returns the total count. Only from guild hooks. */
  size_t (*guild_members)(hearth_context* ctx, uint64_t guild_id, uint64_t* session_ids,
                          uint64_t* user_ids, size_t capacity);

  /* Sends PLUGIN_MESSAGE(kind, payload) to a session on any node (the
   * `session_node` of a subscription event). From guild hooks it arrives in
   * order with that guild's events to the session. */
  hearth_result (*send_to_member)(hearth_context* ctx, const char* session_node,
                                  uint64_t session_id, uint64_t kind, hearth_bytes payload);

  /* Bytes this plugin attaches to a session's guild subscriptions (at most
   * 1 KiB; copied). Sent with every later SUBSCRIBE of the session and seen
   * by the guild side in on_subscribe. Only from hooks on the session's shard. */
  hearth_result (*set_subscription_data)(hearth_context* ctx, uint64_t session_id,
                                         hearth_bytes data);

  /* Sets the plugin's gauge `name` to `value` (shown in the node's stats
   * beside the counters; the last value set wins). Any hook, any thread
   * the host called the plugin on; typically from on_stats. */
  void (*gauge)(hearth_context* ctx, const char* name, uint64_t value);
} hearth_host_api;

/* ------------------------------------------------------------------ hooks */

/* Every hook is optional (NULL). `plugin` is what the plugin put in
 * hearth_plugin_hooks.plugin. */
typedef struct hearth_plugin_hooks {
  size_t struct_size; /* the plugin's sizeof(hearth_plugin_hooks) */
  void* plugin;       /* the plugin's own state, passed back to every hook */

  /* Node start: return HEARTH_ERROR to refuse loading. */
  hearth_result (*on_node_start)(void* plugin, hearth_context* ctx);
  void (*on_node_stop)(void* plugin, hearth_context* ctx);

  /* Session shard. Set ev->reject_reason to refuse the session. */
  hearth_result (*on_identify)(void* plugin, hearth_context* ctx, hearth_identify_event* ev);
  hearth_result (*on_session_close)(void* plugin, hearth_context* ctx,
                                    const hearth_session_event* ev);

  /* Guild shard. */
  hearth_result (*on_subscribe)(void* plugin, hearth_context* ctx,
                                const hearth_subscription_event* ev);
  hearth_result (*on_unsubscribe)(void* plugin, hearth_context* ctx,
                                  const hearth_subscription_event* ev);
  /* Before the guild sequences and fans out the event. */
  hearth_result (*on_publish)(void* plugin, hearth_context* ctx, hearth_publish_event* ev,
                              hearth_publish_verdict* verdict);

  /* The shard that called set_timer. */
  hearth_result (*on_timer)(void* plugin, hearth_context* ctx, const hearth_timer_event* ev);

  /* Custom client messages (PLUGIN_MESSAGE) of the kinds listed below, on
   * the session's shard. */
  hearth_result (*on_message)(void* plugin, hearth_context* ctx, const hearth_message_event* ev);
  const uint64_t* message_kinds;
  size_t message_kind_count;

  /* Slot values when their guild or session ends. */
  void (*on_guild_free)(void* plugin, uint64_t guild_id, void* slot);
  void (*on_session_free)(void* plugin, uint64_t session_id, void* slot);

  /* Just before the node writes its stats line (every --stats-interval-ms),
   * on the node's main thread, concurrently with shard hooks: report gauges
   * and counters of the plugin's own threads here. Must not block. */
  hearth_result (*on_stats)(void* plugin, hearth_context* ctx);
} hearth_plugin_hooks;

/* The one entry point, exported as `hearth_plugin_entry`.
 * `offered` lists the ABI versions the host supports (count `offered_count`).
 * The plugin writes the version it chose to *chosen (0 if none fits, which
 * refuses the plugin), and fills `hooks` for that version. Must not throw. */
typedef hearth_result (*hearth_plugin_entry_fn)(const hearth_host_api* host,
                                                const uint32_t* offered, size_t offered_count,
                                                uint32_t* chosen, hearth_plugin_hooks* hooks);

#define HEARTH_PLUGIN_ENTRY_SYMBOL "hearth_plugin_entry"
#define HEARTH_PLUGIN_BUILD_SYMBOL "hearth_plugin_build"

#ifdef __cplusplus
}
#endif

#endif /* HEARTH_PLUGIN_H */
