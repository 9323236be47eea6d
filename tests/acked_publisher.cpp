#include "acked_publisher.hpp"

#include <variant>

#include "hearth/client.hpp"

namespace hearth::test {

namespace hc = hearth::client;
using Clock = std::chrono::steady_clock;

AckedPublisher::AckedPublisher(std::string endpoint, std::vector<std::uint64_t> guilds,
                               unsigned per_second, std::chrono::milliseconds duration)
    : endpoint_(std::move(endpoint)),
      guilds_(std::move(guilds)),
      per_second_(per_second),
      end_(Clock::now() + duration),
      thread_([this] { run(); }) {}

AckedPublisher::~AckedPublisher() {
  stop_after(std::chrono::milliseconds(0));
  join();
}

void AckedPublisher::stop_after(std::chrono::milliseconds tail) {
  std::lock_guard<std::mutex> lock(mu_);
  end_ = std::min(end_, Clock::now() + tail);
}

void AckedPublisher::join() {
  if (thread_.joinable()) thread_.join();
}

std::map<std::uint64_t, std::set<std::uint64_t>> AckedPublisher::acked_by_guild() const {
  std::map<std::uint64_t, std::set<std::uint64_t>> out;
  for (const auto& [guild, epoch, seq] : acked_) out[guild].insert(seq);
  return out;
}

std::uint64_t AckedPublisher::error_count() const {
  std::uint64_t n = 0;
  for (const auto& [code, count] : errors_) n += count;
  return n;
}

void AckedPublisher::run() {
  hc::Publisher pub(endpoint_);
  std::vector<hc::Message> answers;
  auto collect = [&](std::chrono::milliseconds wait) {
    answers.clear();
    pub.poll(answers, wait);
    for (const auto& a : answers) {
      if (auto* ack = std::get_if<hc::PublishAck>(&a)) {
        acked_.emplace_back(ack->guild_id, ack->epoch, ack->guild_seq);
      }
      if (auto* err = std::get_if<hc::ServerError>(&a)) ++errors_[err->code];
    }
  };
  // Slices of ten publishes, each slice given 10/per_second seconds.
  const auto slice = std::chrono::microseconds(10'000'000 / std::max(1u, per_second_));
  auto next = Clock::now();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Clock::now() >= end_) break;
    }
    for (int i = 0; i < 10; ++i) {
      ++sent_;
      pub.publish(guilds_[sent_ % guilds_.size()], 1, "event-" + std::to_string(sent_), sent_);
    }
    collect(std::chrono::milliseconds(0));
    next += slice;
    const auto now = Clock::now();
    if (next > now) {
      std::this_thread::sleep_until(next);
    } else {
      next = now;  // fell behind (a slow machine): do not burst to catch up
    }
  }
  const auto answers_by = Clock::now() + std::chrono::seconds(3);
  // Every publish gets one answer, unless it was lost with the broker.
  while (Clock::now() < answers_by && acked_.size() + error_count() < sent_) {
    collect(std::chrono::milliseconds(50));
  }
  running_ = false;
}

}  // namespace hearth::test
