#include "collector.hpp"

#include <algorithm>

namespace hearth::push {

Collector::Collector(std::size_t capacity, Keep keep, Clock::duration max_age, PushMetrics& metrics)
    : capacity_(capacity == 0 ? 1 : capacity), keep_(keep), max_age_(max_age), metrics_(metrics) {}

std::size_t Collector::add_consumer(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  wakers_.push_back(std::move(wake));
  hungry_.push_back(false);
  return wakers_.size() - 1;
}

void Collector::offer(std::vector<PushRequest>& batch) {
  if (batch.empty()) return;
  metrics_.received.fetch_add(batch.size(), std::memory_order_relaxed);
  // In chunks, so that a pusher's take() never waits behind one huge batch.
  constexpr std::size_t kChunk = 256;
  std::vector<std::size_t> to_wake;
  for (std::size_t begin = 0; begin < batch.size(); begin += kChunk) {
    const std::size_t end = std::min(batch.size(), begin + kChunk);
    std::uint64_t shed = 0;
    to_wake.clear();
    {
      std::lock_guard lock(mu_);
      if (closed_) {
        metrics_.count_shed(ShedReason::kShutdown, batch.size() - begin);
        break;
      }
      for (std::size_t i = begin; i < end; ++i) {
        if (buffer_.size() >= capacity_) {
          ++shed;
          if (keep_ == Keep::kOldest) continue;
          buffer_.pop_front();
        }
        buffer_.push_back(std::move(batch[i]));
      }
      for (std::size_t i = 0; i < hungry_.size(); ++i) {
        if (hungry_[i]) {
          hungry_[i] = false;
          to_wake.push_back(i);
        }
      }
    }
    if (shed > 0) metrics_.count_shed(ShedReason::kBufferFull, shed);
    // wakers_ only grows before the pushers start, so reading it unlocked is safe.
    for (std::size_t i : to_wake) wakers_[i]();
  }
  batch.clear();
}

void Collector::take(std::size_t consumer, std::size_t n, std::vector<PushRequest>& out) {
  const auto now = Clock::now();
  std::uint64_t expired = 0;
  {
    std::lock_guard lock(mu_);
    while (n > 0 && !buffer_.empty()) {
      PushRequest& r = buffer_.front();
      if (max_age_.count() > 0 && now - r.event->received > max_age_) {
        ++expired;
      } else {
        out.push_back(std::move(r));
        --n;
      }
      buffer_.pop_front();
    }
    if (n > 0) hungry_[consumer] = true;
  }
  if (expired > 0) metrics_.count_shed(ShedReason::kExpired, expired);
}

void Collector::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  metrics_.count_shed(ShedReason::kShutdown, buffer_.size());
  buffer_.clear();
}

std::size_t Collector::buffered() const {
  std::lock_guard lock(mu_);
  return buffer_.size();
}

}  // namespace hearth::push
