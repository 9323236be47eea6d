// Test plugin exercising host services: session and guild slots (freed by
// their hooks), timers, guild_members, send_to_session and counters.
#include <atomic>
#include <string>

#include "hearth/plugin.hpp"

class Services : public hearth::Plugin {
 public:
  std::string on_identify(hearth::Host& host, const hearth_identify_event& ev) override {
    host.set_session_slot(ev.session_id, new std::uint64_t(ev.user_id));
    host.set_timer(50, ev.session_id);  // runs on this session's shard
    return {};
  }
  void on_timer(hearth::Host& host, const hearth_timer_event& ev) override {
    auto* user = static_cast<std::uint64_t*>(host.session_slot(ev.user_data));
    if (!user) return;  // the session closed meanwhile
    host.send_to_session(ev.user_data, 9, "timer for user " + std::to_string(*user));
  }
  void on_session_close(hearth::Host& host, const hearth_session_event&) override {
    host.count("closed");
  }
  void on_session_free(std::uint64_t, void* slot) override {
    delete static_cast<std::uint64_t*>(slot);
    ++freed_sessions_;
  }
  void on_subscribe(hearth::Host& host, const hearth_subscription_event& ev) override {
    auto* joins = static_cast<std::uint64_t*>(host.guild_slot(ev.guild_id));
    if (!joins) {
      joins = new std::uint64_t(0);
      host.set_guild_slot(ev.guild_id, joins);
    }
    ++*joins;
    std::uint64_t sessions[8] = {}, users[8] = {};
    const std::size_t n = host.guild_members(ev.guild_id, sessions, users, 8);
    host.info("guild " + std::to_string(ev.guild_id) + " joins=" + std::to_string(*joins) +
              " members=" + std::to_string(n) + " first_user=" + std::to_string(users[0]));
  }
  void on_unsubscribe(hearth::Host& host, const hearth_subscription_event&) override {
    host.count("unsubscribed");
  }
  void on_guild_free(std::uint64_t, void* slot) override {
    delete static_cast<std::uint64_t*>(slot);
  }
  void on_node_stop(hearth::Host& host) override {
    host.info("stopping; freed sessions=" + std::to_string(freed_sessions_.load()));
  }

 private:
  std::atomic<std::uint64_t> freed_sessions_{0};
};

HEARTH_PLUGIN(Services, "services", "exercises slots, timers and members")
