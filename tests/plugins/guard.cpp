// Test plugin for failing closed: on_identify throws for user 13 (an auth
// plugin that breaks), on_subscribe vetoes guild 666 with a reason and
// throws for guild 667 (a subscription check that breaks).
#include <stdexcept>
#include <string>

#include "hearth/plugin.hpp"

class Guard : public hearth::Plugin {
 public:
  std::string on_identify(hearth::Host&, const hearth_identify_event& ev) override {
    if (ev.user_id == 13) throw std::runtime_error("the user database is unreachable");
    return {};
  }
  void on_subscribe(hearth::Host&, const hearth_subscription_event& ev) override {
    if (ev.guild_id == 666)
      reject_subscription(ev, "guild 666 is closed to user " + std::to_string(ev.user_id));
    if (ev.guild_id == 667) throw std::runtime_error("the guild database is unreachable");
  }
};

HEARTH_PLUGIN(Guard, "guard", "fails closed: identify and subscribe checks")
