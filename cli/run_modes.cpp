#include "cli/run_modes.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "broker/broker.hpp"
#include "cli/security_options.hpp"
#include "nodes/node.hpp"

namespace hearth::cli {

int run_broker(const po::variables_map& vm, const std::atomic<bool>& stop) {
  BrokerConfig bc = broker_config(vm);
  apply_broker_security(vm, bc, SecurityRole::kBroker);
  zmq::context_t ctx(1);
  Broker broker(ctx, bc);
  broker.bind();
  broker.run(stop);
  spdlog::info("broker stopped");
  return 0;
}

int run_node(const po::variables_map& vm, const std::atomic<bool>& stop,
             const std::atomic<bool>& drain) {
  NodeConfig nc = node_config(vm);
  apply_node_security(vm, nc, SecurityRole::kNode);
  zmq::context_t ctx(2);
  Node node(ctx, nc);
  node.bind();
  node.run(stop, &drain);
  spdlog::info("node stopped");
  return 0;
}

int run_all_in_one(const po::variables_map& vm, std::atomic<bool>& stop, bool demo) {
  BrokerConfig bc = broker_config(vm);
  NodeConfig nc = node_config(vm);
  apply_broker_security(vm, bc, SecurityRole::kAllInOne);
  zmq::context_t ctx(2);
  // The embedded node reaches the broker in-process; other nodes may still
  // join over the backend endpoint.
  bc.local_backend = "inproc://hearth-broker-backend";
  bc.settle = std::chrono::milliseconds(0);  // its node starts and stops with it
  nc.broker = bc.local_backend;
  apply_node_security(vm, nc, SecurityRole::kAllInOne);
  Broker broker(ctx, bc);
  broker.bind();
  Node node(ctx, nc);
  std::atomic<bool> stop_broker{false};
  std::thread broker_thread([&] { broker.run(stop_broker); });
  int rc = 0;
  try {
    node.bind();
    std::thread demo_thread;
    if (demo) {
      demo_thread = std::thread([&] {
        run_demo(demo_config(vm), bc.frontend, nc.listen, stop,
                 [&] { return node.stats().summary(); });
      });
    }
    node.run(stop);
    if (demo_thread.joinable()) demo_thread.join();
  } catch (...) {
    stop_broker = true;
    broker_thread.join();
    throw;
  }
  stop_broker = true;
  broker_thread.join();
  spdlog::info("all-in-one stopped");
  return rc;
}

}  // namespace hearth::cli
