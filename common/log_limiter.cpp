#include "common/log_limiter.hpp"

#include "common/log_text.hpp"

namespace hearth {
namespace {

constexpr auto kSecond = std::chrono::seconds(1);
const std::string kOverflowKey = "(other peers)";

}  // namespace

LogLimiter::LogLimiter(std::string who, std::uint32_t burst, std::size_t max_keys)
    : who_(std::move(who)), burst_(burst), max_keys_(max_keys) {}

void LogLimiter::summarise(const std::string& key, const Window& w) {
  if (w.dropped == 0) return;
  spdlog::warn("{}: {} more warning(s) about '{}' in the last second (not shown)", who_, w.dropped,
               printable(key));
}

bool LogLimiter::admit(std::string_view key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = windows_.find(std::string(key));
  if (it == windows_.end()) {
    const std::string& k = windows_.size() < max_keys_ ? std::string(key) : kOverflowKey;
    it = windows_.try_emplace(k, Window{now, 0, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= kSecond) {
    summarise(it->first, w);
    w = Window{now, 0, 0};
  }
  if (w.logged < burst_) {
    ++w.logged;
    return true;
  }
  ++w.dropped;
  ++suppressed_;
  return false;
}

void LogLimiter::flush(Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now - it->second.start >= kSecond) {
      summarise(it->first, it->second);
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
}

std::uint64_t LogLimiter::suppressed() const {
  std::lock_guard lock(mu_);
  return suppressed_;
}

}  // namespace hearth
