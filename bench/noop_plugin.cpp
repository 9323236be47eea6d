// A plugin with every hook present and doing nothing: what the hot path pays
// for the plugin machinery itself.
#include "hearth/plugin.hpp"

class Noop : public hearth::Plugin {
 public:
  PublishDecision on_publish(hearth::Host&, const hearth_publish_event&) override {
    return PublishDecision::pass();
  }
};

HEARTH_PLUGIN(Noop, "noop", "every hook present, doing nothing")
