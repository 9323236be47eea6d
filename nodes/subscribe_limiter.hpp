// One fail-fast semaphore per guild node, shared by all shards of a session
// node: it caps SUBSCRIBE requests in flight to each guild node, so a burst of
// reconnects becomes retries with jittered backoff, never an unbounded queue.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/semaphore.hpp"

namespace hearth {

class SubscribeLimiter {
 public:
  explicit SubscribeLimiter(std::uint32_t permits) : permits_(permits) {}

  // Thread-safe; the reference stays valid for the limiter's life.
  FailFastSemaphore& for_node(const std::string& node) {
    std::lock_guard lock(mu_);
    auto& slot = by_node_[node];
    if (!slot) slot = std::make_unique<FailFastSemaphore>(permits_);
    return *slot;
  }

 private:
  std::uint32_t permits_;
  std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<FailFastSemaphore>> by_node_;
};

}  // namespace hearth
