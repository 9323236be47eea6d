// The push collector: one per node, a bounded buffer between the guild
// shards that decide pushes and the pushers that send them (GenStage's
// producer with buffer_size and buffer_keep).
//
// Producers never block: offer() sheds by the keep policy when the buffer is
// full. Pushers never wait behind producers: take() is a short critical
// section (no queue of "demand" messages to wait behind, as a flooded
// Erlang mailbox would have), and a pusher that found the buffer empty is
// woken by the next offer().
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "push_metrics.hpp"
#include "push_request.hpp"

namespace hearth::push {

// When the buffer is full: keep the newest requests (drop the oldest
// buffered one for each new one) or keep the oldest (drop the new ones).
enum class Keep { kNewest, kOldest };

class Collector {
 public:
  // `max_age`: a request older than this when a pusher would take it is shed
  // as expired (a notification that late is noise). Zero: no limit.
  Collector(std::size_t capacity, Keep keep, Clock::duration max_age, PushMetrics& metrics);

  // Producers (guild shards), any thread. Takes the requests out of `batch`.
  void offer(std::vector<PushRequest>& batch);

  // A pusher takes up to `n` requests. With fewer than `n` available, the
  // pusher's `wake` (set by add_consumer) runs on the next offer.
  void take(std::size_t consumer, std::size_t n, std::vector<PushRequest>& out);
  // Registers a pusher's wake-up; returns its consumer id. Before any take.
  std::size_t add_consumer(std::function<void()> wake);

  // Sheds whatever is buffered (reason: shutdown) and refuses later offers.
  void close();

  std::size_t buffered() const;
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  const Keep keep_;
  const Clock::duration max_age_;
  PushMetrics& metrics_;

  mutable std::mutex mu_;
  std::deque<PushRequest> buffer_;
  std::vector<std::function<void()>> wakers_;
  std::vector<bool> hungry_;
  bool closed_ = false;
};

}  // namespace hearth::push
