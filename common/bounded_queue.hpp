// A bounded multi-producer queue whose consumer takes everything at once.
// Policy when full: try_push refuses and the producer keeps the item (the
// node's hub then stops reading its inputs, pushing back to the sender).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace hearth {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}

  // Thread-safe. False when full; `item` is left untouched then.
  bool try_push(T& item) {
    std::unique_lock lock(mu_);
    if (items_.size() >= capacity_) return false;
    const bool was_empty = items_.empty();
    items_.push_back(std::move(item));
    lock.unlock();
    if (was_empty) ready_.notify_one();
    return true;
  }

  // Consumer only. Waits up to `timeout` for items and moves all of them out.
  template <class Rep, class Period>
  void pop_all(std::deque<T>& out, std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mu_);
    if (items_.empty()) ready_.wait_for(lock, timeout, [&] { return !items_.empty(); });
    out.swap(items_);
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<T> items_;
};

}  // namespace hearth
