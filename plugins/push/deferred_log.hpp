// Warnings from the push plugin's own threads (pushers, the store
// refresher), held until a hook can log them: a host context exists only
// during a hook. At most 100 wait; beyond, they are counted.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/plugin.hpp"

namespace hearth::push {

class DeferredLog {
 public:
  bool pending() const { return pending_.load(std::memory_order_relaxed); }
  void add(std::string text) {
    pending_.store(true, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (lines_.size() < 100) {
      lines_.push_back(std::move(text));
    } else {
      ++dropped_;
    }
  }
  void flush(hearth::Host& host) {
    std::vector<std::string> lines;
    std::uint64_t dropped = 0;
    {
      std::lock_guard lock(mu_);
      pending_.store(false, std::memory_order_relaxed);
      lines.swap(lines_);
      std::swap(dropped, dropped_);
    }
    for (const auto& l : lines) host.warn(l);
    if (dropped > 0) host.warn(std::to_string(dropped) + " more warnings not shown");
  }

 private:
  std::atomic<bool> pending_{false};
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::uint64_t dropped_ = 0;
};

}  // namespace hearth::push
