// A pusher: one thread with one libcurl multi handle, holding at most
// `window` requests (sending or waiting to retry) and asking the collector
// for more only as they complete (GenStage's demand). Over HTTP/2 every
// request of a pusher is a stream on one connection, so `window` bounds the
// provider's pending requests per connection (FCM allowed 100); over
// HTTP/1.1 the pusher keeps a pool of `connections` keep-alive connections
// and its window is the pool size. A provider that answers HTTP/2's ALPN
// offer with HTTP/1.1 moves the pusher to the pool.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "auth_token.hpp"
#include "collector.hpp"
#include "push_metrics.hpp"
#include "push_options.hpp"
#include "token_store.hpp"

namespace hearth::push {

class Pusher {
 public:
  using Warn = std::function<void(const std::string&)>;
  // Every reference must outlive the pusher. `warn` may be called from the
  // pusher's thread.
  Pusher(const PushOptions& options, Collector& collector, TokenStore& store, AuthToken& auth,
         PushMetrics& metrics, Warn warn);
  ~Pusher();
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  void start();
  // Stops taking requests; waits up to `drain` for those in flight, then
  // abandons what is left (counted as shed: shutdown).
  void stop(std::chrono::milliseconds drain);

  std::size_t window() const { return window_.load(std::memory_order_relaxed); }
  std::size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  std::size_t waiting_retry() const { return waiting_.load(std::memory_order_relaxed); }

 private:
  struct Transfer;

  void run();
  // The request headers, rebuilt when the auth token changed. Before send().
  void refresh_headers();
  void send(PushRequest request);
  void finish(void* easy, int code);
  void retry_or_fail(PushRequest request, FailReason reason,
                     std::chrono::seconds retry_after = std::chrono::seconds(0));
  // HTTP/1.1: `connections` keep-alive connections, one request on each.
  void use_keep_alive_pool();
  std::chrono::milliseconds backoff(int attempts);

  const PushOptions& options_;
  Collector& collector_;
  TokenStore& store_;
  AuthToken& auth_;
  PushMetrics& metrics_;
  Warn warn_;
  std::atomic<std::size_t> window_;  // changes only on the pusher's thread
  bool multiplexing_ = false;        // HTTP/2: every request a stream of one connection
  std::size_t consumer_ = 0;

  void* multi_ = nullptr;  // CURLM*, kept out of this header
  std::vector<std::unique_ptr<Transfer>> idle_;
  std::unordered_set<Transfer*> active_;  // added to the multi handle
  std::multimap<Clock::time_point, PushRequest> retries_;
  std::shared_ptr<const std::string> auth_seen_;
  std::shared_ptr<void> headers_;  // curl_slist*, shared with the transfers using it
  std::uint64_t jitter_state_;

  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> waiting_{0};
  std::atomic<bool> stopping_{false};
  std::chrono::milliseconds drain_{0};
  std::thread thread_;
};

}  // namespace hearth::push
