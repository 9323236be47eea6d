// Test plugin: on_publish takes 5 ms.
#include <chrono>
#include <thread>

#include "hearth/plugin.hpp"

class Slow : public hearth::Plugin {
 public:
  PublishDecision on_publish(hearth::Host&, const hearth_publish_event&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return PublishDecision::pass();
  }
};

HEARTH_PLUGIN(Slow, "slow", "sleeps 5 ms in on_publish")
