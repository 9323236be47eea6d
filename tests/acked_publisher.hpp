// A publisher thread for fault tests: acknowledged publishes round-robin over
// a set of guilds at a bounded pace, recording every PUBLISH_ACK and every
// ERROR, until a deadline or until told to stop, then a short wait for the
// last answers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace hearth::test {

class AckedPublisher {
 public:
  using Position = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>;  // guild, epoch, seq

  // Publishes to `endpoint` at most `per_second` events (paced in slices of
  // ten) for at most `duration`, or until stop() and then `tail` more.
  AckedPublisher(std::string endpoint, std::vector<std::uint64_t> guilds, unsigned per_second,
                 std::chrono::milliseconds duration);
  ~AckedPublisher();

  // Ends publishing after `tail`; returns at once.
  void stop_after(std::chrono::milliseconds tail);
  // Waits until publishing ended and the last answers were collected.
  void join();
  bool running() const { return running_.load(); }

  // After join():
  std::uint64_t sent() const { return sent_; }
  const std::vector<Position>& acked() const { return acked_; }
  // Acknowledged guild_seqs per guild.
  std::map<std::uint64_t, std::set<std::uint64_t>> acked_by_guild() const;
  const std::map<std::uint32_t, std::uint64_t>& errors() const { return errors_; }
  std::uint64_t error_count() const;

 private:
  void run();

  std::string endpoint_;
  std::vector<std::uint64_t> guilds_;
  unsigned per_second_;
  std::chrono::steady_clock::time_point end_;
  std::mutex mu_;  // end_ may move earlier from stop_after()
  std::atomic<bool> running_{true};
  std::uint64_t sent_ = 0;
  std::vector<Position> acked_;
  std::map<std::uint32_t, std::uint64_t> errors_;
  std::thread thread_;
};

}  // namespace hearth::test
