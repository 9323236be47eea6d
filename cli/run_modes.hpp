// The process shapes `hearth` can take. Each runs until `stop` is set.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cli/options.hpp"

namespace hearth::cli {

int run_broker(const po::variables_map& vm, const std::atomic<bool>& stop);
// The first SIGTERM sets `drain`: the node drains, then returns.
int run_node(const po::variables_map& vm, const std::atomic<bool>& stop,
             const std::atomic<bool>& drain);
// Broker and one node of both roles in one process; with a demo workload when
// `demo` is set.
int run_all_in_one(const po::variables_map& vm, std::atomic<bool>& stop, bool demo);

// The demo workload against a running all-in-one cluster: publishes, receives,
// checks order, and prints a live line every second.
void run_demo(const DemoConfig& demo, const std::string& frontend, const std::string& listen,
              std::atomic<bool>& stop, const std::function<std::string()>& node_summary);

}  // namespace hearth::cli
