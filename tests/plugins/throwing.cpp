// Test plugin: every on_publish throws.
#include <stdexcept>

#include "hearth/plugin.hpp"

class Throwing : public hearth::Plugin {
 public:
  PublishDecision on_publish(hearth::Host&, const hearth_publish_event&) override {
    throw std::runtime_error("on_publish always throws");
  }
};

HEARTH_PLUGIN(Throwing, "throwing", "throws from on_publish")
