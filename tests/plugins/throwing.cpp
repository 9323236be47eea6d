// Test plugin: every on_publish throws (and so it gets disabled); it says
// when it is stopped, which a disabled plugin still is.
#include <stdexcept>

#include "hearth/plugin.hpp"

class Throwing : public hearth::Plugin {
 public:
  PublishDecision on_publish(hearth::Host&, const hearth_publish_event&) override {
    throw std::runtime_error("on_publish always throws");
  }
  void on_node_stop(hearth::Host& host) override { host.info("on_node_stop: releasing"); }
};

HEARTH_PLUGIN(Throwing, "throwing", "throws from on_publish")
