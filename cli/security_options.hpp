// CURVE options of the `hearth` commands, and the rule that a multi-process
// cluster refuses unauthenticated peers unless told --insecure
// (docs/security.md).
#pragma once

#include "cli/options.hpp"

namespace hearth::cli {

enum class SecurityRole { kBroker, kNode, kAllInOne };

po::options_description security_options(SecurityRole role);

// Fill the CURVE parts of the configs. Throw UsageError for missing or bad
// keys, and (broker, node) for a reachable endpoint left without
// authentication when --insecure is not given.
void apply_broker_security(const po::variables_map& vm, BrokerConfig& c, SecurityRole role);
void apply_node_security(const po::variables_map& vm, NodeConfig& c, SecurityRole role);

// `hearth keygen NAME [--dir DIR]`.
int run_keygen(int argc, char** argv);

}  // namespace hearth::cli
