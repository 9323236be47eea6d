// A broker and one node of both roles running in this process on their own
// threads, as `hearth all-in-one` runs them: what the in-process benchmarks
// measure against.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "broker/broker.hpp"
#include "nodes/node.hpp"

namespace hearth::bench {

// The node reaches the broker over inproc; clients use `frontend` (publishers)
// and `listen` (sessions). Stops and joins both threads when destroyed.
class InProcessCluster {
 public:
  InProcessCluster(const std::string& frontend, const std::string& listen, NodeConfig node)
      : broker_(ctx_, broker_config(frontend)),
        node_(ctx_, with_endpoints(std::move(node), listen)) {
    broker_.bind();
    node_.bind();
    broker_thread_ = std::thread([this] { broker_.run(stop_); });
    node_thread_ = std::thread([this] { node_.run(stop_); });
  }
  ~InProcessCluster() {
    stop_ = true;
    node_thread_.join();
    broker_thread_.join();
  }

  const Node& node() const { return node_; }

 private:
  static constexpr const char* kBackend = "inproc://bench-broker-backend";
  static BrokerConfig broker_config(const std::string& frontend) {
    BrokerConfig c;
    c.frontend = frontend;
    c.backend = kBackend;
    return c;
  }
  static NodeConfig with_endpoints(NodeConfig c, const std::string& listen) {
    c.broker = kBackend;
    c.listen = listen;
    return c;
  }

  zmq::context_t ctx_{2};
  Broker broker_;
  Node node_;
  std::atomic<bool> stop_{false};
  std::thread broker_thread_, node_thread_;
};

}  // namespace hearth::bench
