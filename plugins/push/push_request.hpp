// What flows through the push pipeline: one request per device.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace hearth::push {

using Clock = std::chrono::steady_clock;

// The guild event a push tells about; shared by every device it goes to.
struct PushEvent {
  std::uint64_t guild = 0;
  std::uint64_t kind = 0;
  std::string payload;
  std::string title;
  std::string body;
  Clock::time_point received;  // when the guild sequenced it: latency starts here
};

struct PushRequest {
  std::shared_ptr<const PushEvent> event;
  std::uint64_t user = 0;
  std::string token;
  int attempts = 0;  // sends so far
};

}  // namespace hearth::push
