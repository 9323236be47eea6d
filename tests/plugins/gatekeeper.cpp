// Test plugin: rejects user 666 at IDENTIFY, rewrites "secret" payloads, drops
// payloads starting with "drop:", and answers message kind 7 with its counts.
#include <atomic>
#include <string>

#include "hearth/plugin.hpp"

class Gatekeeper : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    banned_ = std::stoull(host.config("banned_user", "666"));
    return true;
  }
  std::string on_identify(hearth::Host& host, const hearth_identify_event& ev) override {
    if (ev.user_id != banned_) return {};
    host.count("rejected");
    return "user " + std::to_string(ev.user_id) + " is banned";
  }
  PublishDecision on_publish(hearth::Host& host, const hearth_publish_event& ev) override {
    const auto payload = hearth::view(ev.payload);
    if (payload.substr(0, 5) == "drop:") {
      host.count("dropped");
      ++dropped_;
      return PublishDecision::drop("dropped by gatekeeper: " + std::string(payload.substr(5)));
    }
    if (payload == "secret") {
      host.count("rewritten");
      return PublishDecision::replace("[redacted]");
    }
    return PublishDecision::pass();
  }
  std::vector<std::uint64_t> message_kinds() const override { return {7}; }
  void on_message(hearth::Host& host, const hearth_message_event& ev) override {
    host.send_to_session(ev.session_id, 7,
                         "dropped=" + std::to_string(dropped_.load()) +
                             " asked=" + std::string(hearth::view(ev.payload)));
  }

 private:
  std::uint64_t banned_ = 666;
  std::atomic<std::uint64_t> dropped_{0};
};

HEARTH_PLUGIN(Gatekeeper, "gatekeeper", "rejects, rewrites, drops, answers kind 7")
