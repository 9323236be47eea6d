// Test plugin: refuses to start.
#include "hearth/plugin.hpp"

class FailInit : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    host.warn("refusing to start, as tests ask");
    return false;
  }
};

HEARTH_PLUGIN(FailInit, "fail_init", "refuses to start")
