#include "pusher.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "fcm.hpp"

namespace hearth::push {

struct Pusher::Transfer {
  CURL* easy = nullptr;
  PushRequest request;
  std::string body;
  std::chrono::seconds retry_after{0};  // the provider's Retry-After, if it sent one
  std::string response;
  std::shared_ptr<void> headers;  // keeps the header list alive while sending
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
  }
};

namespace {

CURLM* multi(void* m) {
  return static_cast<CURLM*>(m);
}

// Keeps the first 4 KiB of the answer: enough for the provider's error.
size_t keep_response(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (out->size() < 4096) out->append(data, std::min(n, 4096 - out->size()));
  return n;
}

// Picks the provider's Retry-After (seconds; FCM sends it with 429 and 503).
size_t read_header(char* data, size_t size, size_t count, void* user) {
  const size_t n = size * count;
  const std::string_view line(data, n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      std::equal(kName.begin(), kName.end(), line.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    long seconds = 0;
    for (char c : line.substr(kName.size())) {
      if (c >= '0' && c <= '9') seconds = std::min(seconds * 10 + (c - '0'), 3600L);
    }
    *static_cast<std::chrono::seconds*>(user) = std::chrono::seconds(seconds);
  }
  return n;
}

}  // namespace

Pusher::Pusher(const PushOptions& options, Collector& collector, TokenStore& store, AuthToken& auth,
               PushMetrics& metrics, Warn warn)
    : options_(options),
      collector_(collector),
      store_(store),
      auth_(auth),
      metrics_(metrics),
      warn_(std::move(warn)),
      window_(options.max_in_flight),
      jitter_state_(reinterpret_cast<std::uintptr_t>(this) | 1) {
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("push: curl_multi_init failed");
  if (options.http2) {
    // One connection, every request a stream on it, at most `window` at once.
    multiplexing_ = true;
    curl_multi_setopt(multi(multi_), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi(multi_), CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    curl_multi_setopt(multi(multi_), CURLMOPT_MAX_CONCURRENT_STREAMS, static_cast<long>(window_));
  } else {
    use_keep_alive_pool();
  }
  consumer_ = collector_.add_consumer([this] { curl_multi_wakeup(multi(multi_)); });
}

Pusher::~Pusher() {
  stop(std::chrono::milliseconds(0));
  idle_.clear();
  curl_multi_cleanup(multi(multi_));
}

void Pusher::use_keep_alive_pool() {
  multiplexing_ = false;
  curl_multi_setopt(multi(multi_), CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
  curl_multi_setopt(multi(multi_), CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(options_.connections));
  curl_multi_setopt(multi(multi_), CURLMOPT_MAXCONNECTS, static_cast<long>(options_.connections));
  // One request per connection at a time: more would only wait inside libcurl.
  window_ = std::min(options_.max_in_flight, options_.connections);
}

void Pusher::start() {
  thread_ = std::thread([this] { run(); });
}

void Pusher::stop(std::chrono::milliseconds drain) {
  if (!thread_.joinable()) return;
  drain_ = drain;
  stopping_.store(true);
  curl_multi_wakeup(multi(multi_));
  thread_.join();
}

std::chrono::milliseconds Pusher::backoff(int attempts) {
  // Exponential with jitter (50-100%), so that retries of a failed burst
  // do not return as one burst.
  const auto cap = std::chrono::milliseconds(30000);
  auto base = options_.retry_base * (1LL << std::min(attempts - 1, 16));
  if (base > cap) base = cap;
  jitter_state_ ^= jitter_state_ << 13;
  jitter_state_ ^= jitter_state_ >> 7;
  jitter_state_ ^= jitter_state_ << 17;
  const auto half = base.count() / 2;
  return std::chrono::milliseconds(
      half + static_cast<long long>(jitter_state_ % static_cast<std::uint64_t>(half + 1)));
}

void Pusher::refresh_headers() {
  auto token = auth_.current();
  if (token == auth_seen_ && headers_) return;
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip on HTTP/1.1
  for (const auto& h : options_.headers) list = curl_slist_append(list, h.c_str());
  if (!token->empty()) list = curl_slist_append(list, ("Authorization: Bearer " + *token).c_str());
  headers_ = std::shared_ptr<void>(
      list, [](void* l) { curl_slist_free_all(static_cast<curl_slist*>(l)); });
  auth_seen_ = token;
}

void Pusher::send(PushRequest request) {
  std::unique_ptr<Transfer> t;
  if (!idle_.empty()) {
    t = std::move(idle_.back());
    idle_.pop_back();
  } else {
    t = std::make_unique<Transfer>();
    t->easy = curl_easy_init();
    if (!t->easy) {
      retry_or_fail(std::move(request), FailReason::kConnection);
      return;
    }
  }
  ++request.attempts;
  if (request.attempts > 1) metrics_.retried.fetch_add(1, std::memory_order_relaxed);
  t->body = fcm_body(request, options_.payload_limit);
  t->request = std::move(request);
  t->response.clear();
  t->headers = headers_;
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(t->headers.get()));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &keep_response);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->response);
  t->retry_after = std::chrono::seconds(0);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &read_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->retry_after);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<long long>(options_.timeout.count(), 5000)));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  const bool tls = options_.url.rfind("https://", 0) == 0;
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   !options_.http2 ? CURL_HTTP_VERSION_1_1
                   : tls           ? CURL_HTTP_VERSION_2TLS
                                   : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
  // Wait for the one connection rather than open a second while it connects.
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, multiplexing_ ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  if (curl_multi_add_handle(multi(multi_), e) != CURLM_OK) {
    PushRequest back = std::move(t->request);
    idle_.push_back(std::move(t));
    retry_or_fail(std::move(back), FailReason::kConnection);
    return;
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  active_.insert(t.release());  // owned by the multi handle until finish()
}

void Pusher::retry_or_fail(PushRequest request, FailReason reason,
                           std::chrono::seconds retry_after) {
  if (request.attempts < options_.max_attempts && !stopping_.load()) {
    // The provider's Retry-After, when it gave one, is a floor (at most 60 s).
    const auto wait = std::max<Clock::duration>(backoff(request.attempts),
                                                std::min(retry_after, std::chrono::seconds(60)));
    const auto at = Clock::now() + wait;
    retries_.emplace(at, std::move(request));
    waiting_.store(retries_.size(), std::memory_order_relaxed);
    return;
  }
  metrics_.count_failed(reason);
}

void Pusher::finish(void* easy, int code) {
  Transfer* raw = nullptr;
  curl_easy_getinfo(static_cast<CURL*>(easy), CURLINFO_PRIVATE, &raw);
  std::unique_ptr<Transfer> t(raw);
  active_.erase(raw);
  curl_multi_remove_handle(multi(multi_), static_cast<CURL*>(easy));
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  long status = 0;
  if (code == CURLE_OK) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (code == CURLE_OK && multiplexing_) {
    long version = 0;
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
    if (version == CURL_HTTP_VERSION_1_0 || version == CURL_HTTP_VERSION_1_1) {
      use_keep_alive_pool();
      warn_("the provider does not speak HTTP/2 (ALPN chose HTTP/1.1): this pusher now keeps " +
            std::to_string(options_.connections) + " keep-alive connections instead");
    }
  }
  const Outcome outcome = classify(status, code == CURLE_OPERATION_TIMEDOUT, t->response);
  if (code != CURLE_OK && code != CURLE_OPERATION_TIMEDOUT) {
    warn_(std::string("sending to the provider: ") +
          curl_easy_strerror(static_cast<CURLcode>(code)));
  }
  PushRequest request = std::move(t->request);
  const auto retry_after = t->retry_after;
  t->headers.reset();
  idle_.push_back(std::move(t));
  switch (outcome.action) {
    case Outcome::Action::kDelivered: {
      metrics_.sent.fetch_add(1, std::memory_order_relaxed);
      const auto took = Clock::now() - request.event->received;
      metrics_.latency.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
      break;
    }
    case Outcome::Action::kRetry:
      retry_or_fail(std::move(request), outcome.reason, retry_after);
      break;
    case Outcome::Action::kFail:
      metrics_.count_failed(outcome.reason);
      if (outcome.reason == FailReason::kInvalidToken) {
        try {
          store_.remove(request.token, request.user);
        } catch (const std::exception& e) {
          warn_(std::string("cannot remove an invalid token: ") + e.what());
        }
      } else if (outcome.reason == FailReason::kAuth) {
        warn_("the provider refused the credentials (HTTP " + std::to_string(status) +
              "): check push.auth_token or push.auth_token_file");
      }
      break;
  }
}

void Pusher::run() {
  std::vector<PushRequest> batch;
  batch.reserve(options_.max_in_flight);
  Clock::time_point drain_until{};
  while (true) {
    const bool stopping = stopping_.load();
    if (stopping && drain_until == Clock::time_point{}) drain_until = Clock::now() + drain_;
    if (stopping && (in_flight() == 0 || Clock::now() >= drain_until)) break;

    int running = 0;
    curl_multi_perform(multi(multi_), &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi(multi_), &left)) {
      if (msg->msg == CURLMSG_DONE) finish(msg->easy_handle, msg->data.result);
    }
    const auto now = Clock::now();
    if (!stopping) {
      refresh_headers();  // once per turn, not per request: the token rarely changes
      while (!retries_.empty() && retries_.begin()->first <= now) {
        PushRequest r = std::move(retries_.begin()->second);
        retries_.erase(retries_.begin());
        send(std::move(r));
      }
      waiting_.store(retries_.size(), std::memory_order_relaxed);
      // Demand: only what completed since, so at most `window` are held.
      const std::size_t held = in_flight() + retries_.size();
      if (held < window_) {
        batch.clear();
        collector_.take(consumer_, window_ - held, batch);
        for (auto& r : batch) send(std::move(r));
      }
    }
    long wait_ms = 100;
    if (!retries_.empty()) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                             retries_.begin()->first - Clock::now())
                             .count();
      wait_ms = std::clamp<long>(static_cast<long>(until), 0, wait_ms);
    }
    curl_multi_poll(multi(multi_), nullptr, 0, static_cast<int>(wait_ms), nullptr);
  }
  // Abandoned at shutdown: what is still in flight or waiting to retry.
  std::uint64_t abandoned = retries_.size();
  retries_.clear();
  waiting_.store(0);
  for (Transfer* t : active_) {
    curl_multi_remove_handle(multi(multi_), t->easy);
    delete t;
    ++abandoned;
  }
  active_.clear();
  in_flight_.store(0);
  metrics_.count_shed(ShedReason::kShutdown, abandoned);
}

}  // namespace hearth::push
