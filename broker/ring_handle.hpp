// Publishes immutable Ring snapshots to reader threads, FastGlobal style.
//
// Writers (the thread that learns of membership changes) call publish().
// Each reader thread owns a RingReader; RingReader::get() costs one atomic
// load when the ring has not changed and never copies the ring. An old ring is
// freed when the last reader holding it has moved on.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "broker/ring.hpp"

namespace hearth {

class RingHandle {
 public:
  RingHandle() : current_(std::make_shared<const Ring>(RingSpec{}, 0)) {}

  // Thread-safe; versions must increase.
  void publish(std::shared_ptr<const Ring> ring) {
    std::lock_guard lock(mu_);
    current_ = std::move(ring);
    version_.store(current_->version(), std::memory_order_release);
  }

  // Thread-safe; takes a reference on the current snapshot (slow path).
  std::shared_ptr<const Ring> load() const {
    std::lock_guard lock(mu_);
    return current_;
  }

  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Ring> current_;
  std::atomic<std::uint64_t> version_{0};
};

// One per reader thread; not thread-safe itself.
class RingReader {
 public:
  explicit RingReader(const RingHandle& handle) : handle_(handle), cached_(handle.load()) {}

  const Ring& get() {
    if (handle_.version() != cached_->version()) cached_ = handle_.load();
    return *cached_;
  }

 private:
  const RingHandle& handle_;
  std::shared_ptr<const Ring> cached_;
};

}  // namespace hearth
