// Push notifications to members with no live session, through a
// back-pressured pipeline (docs/push.md):
//
//   guild shards --offer--> Collector (bounded, sheds) <--take-- Pushers --HTTP--> provider
//
// Guild side (the guild's shard): on_publish decides who gets a push: the
// users a PUSH_EVENT envelope names, or, for kinds configured to push, the
// guild's members with a device; minus every user with a session subscribed
// to the guild right now. Session side: clients register and remove their
// device tokens with PLUGIN_MESSAGEs, kept in SQLite (token_store.hpp).
#include <curl/curl.h>

#include <atomic>
#include <memory>
#include <msgpack.hpp>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth_token.hpp"
#include "collector.hpp"
#include "deferred_log.hpp"
#include "hearth/plugin.hpp"
#include "push_metrics.hpp"
#include "push_options.hpp"
#include "push_protocol.hpp"
#include "pusher.hpp"
#include "token_store.hpp"

namespace {

using namespace hearth::push;

// Device changes waiting for the database before registrations are refused.
constexpr std::size_t kMaxPendingWrites = 100000;

struct SessionInfo {  // session slot, on the session's shard
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
};

struct GuildSessions {  // guild slot, on the guild's shard: who is live here
  std::unordered_map<std::uint64_t, std::uint32_t> sessions_of_user;
  bool live(std::uint64_t user) const { return sessions_of_user.contains(user); }
};

class Push : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    try {
      options_ = parse_options([&](const char* key) -> std::optional<std::string> {
        static const std::string kUnset = "\x1f(unset)";
        std::string v = host.config(key, kUnset);
        if (v == kUnset) return std::nullopt;
        return v;
      });
      store_ = std::make_unique<TokenStore>(options_.db, options_.max_devices, kMaxPendingWrites,
                                            [this](const std::string& w) { log_.add(w); });
      auth_ = std::make_unique<AuthToken>(options_.auth_token, options_.auth_token_file);
    } catch (const std::exception& e) {
      host.warn(e.what());
      return false;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      host.warn("curl_global_init failed");
      return false;
    }
    curl_ready_ = true;
    if (std::string why = http2_unusable(); !why.empty()) {
      host.warn(why);
      curl_global_cleanup();
      curl_ready_ = false;
      return false;
    }
    collector_ =
        std::make_unique<Collector>(options_.buffer, options_.keep, options_.max_age, metrics_);
    for (std::size_t i = 0; i < options_.pushers; ++i) {
      pushers_.push_back(std::make_unique<Pusher>(options_, *collector_, *store_, *auth_, metrics_,
                                                  [this](const std::string& w) { log_.add(w); }));
    }
    for (auto& p : pushers_) p->start();
    host.info("to " + options_.url + " over " + (options_.http2 ? "HTTP/2" : "HTTP/1.1") + ", " +
              std::to_string(options_.pushers) + " pusher(s) of " +
              std::to_string(pushers_.front()->window()) + " in flight, buffer " +
              std::to_string(options_.buffer) + " keeping the " +
              (options_.keep == Keep::kNewest ? "newest" : "oldest") + "; " +
              std::to_string(store_->device_count()) + " device(s) in " + options_.db);
    return true;
  }

  void on_node_stop(hearth::Host& host) override {
    shutdown();
    log_.flush(host);
    host.info("stopped: " + std::to_string(metrics_.sent.load()) + " sent, " +
              std::to_string(metrics_.shed_total()) + " shed");
  }

  // Should the host unload the plugin without on_node_stop, the threads
  // still stop before the code they run goes away.
  ~Push() override { shutdown(); }

  // ---- session side: devices ----

  std::string on_identify(hearth::Host& host, const hearth_identify_event& ev) override {
    host.set_session_slot(ev.session_id,
                          new SessionInfo{ev.user_id, {ev.guilds, ev.guilds + ev.guild_count}});
    return {};
  }
  void on_session_free(std::uint64_t, void* slot) override {
    delete static_cast<SessionInfo*>(slot);
  }

  std::vector<std::uint64_t> message_kinds() const override { return {kRegisterKind, kRemoveKind}; }

  void on_message(hearth::Host& host, const hearth_message_event& ev) override {
    auto* s = static_cast<SessionInfo*>(host.session_slot(ev.session_id));
    if (!s) return;
    std::string token;
    try {
      auto h = unpack_untrusted(ev.payload.data, ev.payload.size);
      token = std::get<0>(h.get().as<std::tuple<std::string>>());
    } catch (const std::exception&) {
      return answer(host, ev, false, "the payload must be [token]");
    }
    if (std::string why = TokenStore::check_token(token); !why.empty()) {
      return answer(host, ev, false, why);
    }
    using Change = TokenStore::Change;
    const Change done = ev.kind == kRegisterKind ? store_->add(s->user, token, s->guilds)
                                                 : store_->remove(token, s->user);
    if (done == Change::kBusy) {
      host.count("devices_busy");
      return answer(host, ev, false, "too many device changes waiting to be stored; retry later");
    }
    if (ev.kind == kRegisterKind) {
      host.count("devices_registered");
      return answer(host, ev, true, "registered");
    }
    if (done == Change::kNotFound) return answer(host, ev, false, "no such device for this user");
    host.count("devices_removed");
    return answer(host, ev, true, "removed");
  }

  // ---- guild side: who is live, and who gets a push ----

  void on_subscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    auto* g = static_cast<GuildSessions*>(host.guild_slot(ev.guild_id));
    if (!g) {
      g = new GuildSessions;
      host.set_guild_slot(ev.guild_id, g);
    }
    ++g->sessions_of_user[ev.user_id];
  }
  void on_unsubscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    auto* g = static_cast<GuildSessions*>(host.guild_slot(ev.guild_id));
    if (!g) return;
    auto it = g->sessions_of_user.find(ev.user_id);
    if (it != g->sessions_of_user.end() && --it->second == 0) g->sessions_of_user.erase(it);
  }
  void on_guild_free(std::uint64_t, void* slot) override {
    delete static_cast<GuildSessions*>(slot);
  }

  PublishDecision on_publish(hearth::Host& host, const hearth_publish_event& ev) override {
    if (log_.pending()) log_.flush(host);  // the pushers' warnings, with or without stats
    if (ev.kind == options_.envelope_kind) return on_envelope(host, ev);
    if (options_.pushes_kind(ev.guild_id, ev.kind)) push_by_kind(host, ev);
    return PublishDecision::pass();
  }

  void on_stats(hearth::Host& host) override {
    log_.flush(host);
    std::size_t in_flight = 0, retrying = 0;
    for (const auto& p : pushers_) {
      in_flight += p->in_flight();
      retrying += p->waiting_retry();
    }
    host.gauge("received", metrics_.received.load());
    host.gauge("sent", metrics_.sent.load());
    host.gauge("in_flight", in_flight);
    host.gauge("buffered", collector_->buffered());
    host.gauge("retrying", retrying);
    host.gauge("retried", metrics_.retried.load());
    host.gauge("no_device", metrics_.no_device.load());
    host.gauge("devices", store_->device_count());
    host.gauge("device_write_failures", store_->write_failures());
    for (std::size_t i = 0; i < kShedNames.size(); ++i) {
      host.gauge(kShedNames[i], metrics_.shed[i].load());
    }
    for (std::size_t i = 0; i < kFailNames.size(); ++i) {
      host.gauge(kFailNames[i], metrics_.failed[i].load());
    }
    const auto window = metrics_.latency.take_window();
    host.gauge("latency_count", window.count);
    host.gauge("latency_p50_us", window.p50_us);
    host.gauge("latency_p90_us", window.p90_us);
    host.gauge("latency_p99_us", window.p99_us);
    host.gauge("latency_max_us", window.max_us);
  }

 private:
  // A guild's sessions, as this plugin saw them subscribe (null: none).
  static const GuildSessions* live_sessions(hearth::Host& host, std::uint64_t guild) {
    return static_cast<const GuildSessions*>(host.guild_slot(guild));
  }

  // PUSH_EVENT: [kind, payload, [user...], title, body]. Live sessions get
  // `payload` as an event of `kind`; named users with none get a push.
  PublishDecision on_envelope(hearth::Host& host, const hearth_publish_event& ev) {
    std::uint64_t kind = 0;
    std::vector<std::uint64_t> users;
    auto event = std::make_shared<PushEvent>();
    try {
      auto h = unpack_untrusted(ev.payload.data, ev.payload.size);
      auto t = h.get()
                   .as<std::tuple<std::uint64_t, std::string, std::vector<std::uint64_t>,
                                  std::string, std::string>>();
      std::tie(kind, event->payload, users, event->title, event->body) = std::move(t);
    } catch (const std::exception&) {
      return PublishDecision::drop(
          "PUSH_EVENT payload must be [kind, payload, [user...], title, body]");
    }
    if (kind == 0 || kind == options_.envelope_kind) {
      return PublishDecision::drop("PUSH_EVENT kind must be a guild event kind, not 0 or " +
                                   std::to_string(options_.envelope_kind));
    }
    event->guild = ev.guild_id;
    event->kind = kind;
    const GuildSessions* live = live_sessions(host, ev.guild_id);
    std::unordered_set<std::uint64_t> seen;
    std::vector<std::uint64_t> targets;
    for (std::uint64_t u : users) {
      if ((!live || !live->live(u)) && seen.insert(u).second) targets.push_back(u);
    }
    std::string delivered = event->payload;
    enqueue(std::move(event), targets);
    return PublishDecision::replace(std::move(delivered), kind);
  }

  // An event of a kind configured to push: to every member with a device
  // and no live session in the guild.
  void push_by_kind(hearth::Host& host, const hearth_publish_event& ev) {
    const GuildSessions* live = live_sessions(host, ev.guild_id);
    std::vector<std::uint64_t> targets;
    for (std::uint64_t u : store_->members_with_devices(ev.guild_id)) {
      if (!live || !live->live(u)) targets.push_back(u);
    }
    if (targets.empty()) return;
    auto event = std::make_shared<PushEvent>();
    event->guild = ev.guild_id;
    event->kind = ev.kind;
    event->payload.assign(static_cast<const char*>(ev.payload.data), ev.payload.size);
    event->title = options_.title;
    enqueue(std::move(event), targets);
  }

  // Why this libcurl cannot do what push.http=2 asks, or empty.
  std::string http2_unusable() const {
    if (!options_.http2) return {};
    const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
    if (!(v->features & CURL_VERSION_HTTP2)) {
      return std::string("push.http=2: this libcurl (") + v->version +
             ") has no HTTP/2; use push.http=1.1";
    }
    // Before 8.0, a reused cleartext prior-knowledge connection fails every
    // multiplexed request after the first (curl issue 10634).
    if (options_.url.rfind("http://", 0) == 0 && v->version_num < 0x080000) {
      return std::string(
                 "push.http=2 over cleartext http:// needs libcurl 8.0 or later (this is ") +
             v->version +
             ", whose h2c multiplexing is broken): use an https:// URL, as FCM does, or "
             "push.http=1.1";
    }
    return {};
  }

  void enqueue(std::shared_ptr<PushEvent> event, const std::vector<std::uint64_t>& users) {
    if (users.empty()) return;
    event->received = Clock::now();
    std::shared_ptr<const PushEvent> shared = std::move(event);
    std::vector<PushRequest> batch;
    for (std::uint64_t u : users) {
      auto tokens = store_->tokens_of(u);
      if (tokens.empty()) metrics_.no_device.fetch_add(1, std::memory_order_relaxed);
      for (auto& t : tokens) batch.push_back(PushRequest{shared, u, std::move(t), 0});
    }
    collector_->offer(batch);
  }

  static void answer(hearth::Host& host, const hearth_message_event& ev, bool ok,
                     const std::string& text) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple(ev.kind, ok, text));
    host.send_to_session(ev.session_id, kResultKind, std::string_view(b.data(), b.size()));
  }

  // Stops the pushers (requests in flight get a moment to finish; what is
  // still buffered is shed, reason: shutdown) and closes the device store.
  void shutdown() {
    for (auto& p : pushers_) p->stop(std::chrono::milliseconds(1000));
    if (collector_) collector_->close();
    pushers_.clear();
    store_.reset();  // writes the device changes still waiting
    if (curl_ready_) curl_global_cleanup();
    curl_ready_ = false;
  }

  PushOptions options_;
  PushMetrics metrics_;
  DeferredLog log_;
  std::unique_ptr<TokenStore> store_;
  std::unique_ptr<AuthToken> auth_;
  std::unique_ptr<Collector> collector_;
  std::vector<std::unique_ptr<Pusher>> pushers_;
  bool curl_ready_ = false;
};

}  // namespace

HEARTH_PLUGIN(Push, "push", "push notifications to offline members (FCM HTTP v1)")
