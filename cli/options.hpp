// Command-line and config-file options of the `hearth` command.
#pragma once

#include <boost/program_options.hpp>
#include <stdexcept>
#include <string>

#include "broker/broker.hpp"
#include "nodes/node_config.hpp"

namespace hearth::cli {

namespace po = boost::program_options;

// A bad command line or config file (exit status 2), as opposed to a failure
// while running (exit status 1).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DemoConfig {
  unsigned connections = 50;
  unsigned sessions_per_connection = 20;
  unsigned guilds = 20;
  unsigned guilds_per_session = 3;
  unsigned rate = 2000;  // events per second over all guilds
  unsigned payload_bytes = 100;
  unsigned duration_s = 0;     // 0: until interrupted
  unsigned offline_users = 0;  // with a device each, for the push plugin
  unsigned mention_rate = 0;   // PUSH_EVENTs per second naming one of them
};

po::options_description common_options();
po::options_description broker_options();
po::options_description node_options(bool embedded);
po::options_description demo_options();

// Parse argv (after the command word) and the optional --config file.
// Throws UsageError with a message naming the bad option.
po::variables_map parse(int argc, char** argv, const po::options_description& desc);

BrokerConfig broker_config(const po::variables_map& vm);
NodeConfig node_config(const po::variables_map& vm);
DemoConfig demo_config(const po::variables_map& vm);
void apply_logging(const po::variables_map& vm);

}  // namespace hearth::cli
