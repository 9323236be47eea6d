// The delivery check shared by the integration tests: sessions over guilds,
// concurrent acknowledged publishers, and an exact comparison of what every
// session received against what its guilds sequenced.
#pragma once

#include <string>
#include <vector>

namespace hearth::test {

struct Workload {
  unsigned sessions = 500;
  unsigned guilds = 50;
  unsigned min_guilds_per_session = 2;
  unsigned max_guilds_per_session = 8;
  unsigned events = 20000;
  unsigned publishers = 3;
  unsigned connections_per_endpoint = 25;
};

// Runs the workload and checks it with gtest assertions.
void run_and_verify(const Workload& w, const std::string& frontend,
                    const std::vector<std::string>& session_endpoints);

}  // namespace hearth::test
