// Failed IDENTIFYs, counted per connection and per client address
// (docs/security.md, "Client authentication"). A connection that fails
// `per_connection` times is closed: the node drops everything it sends from
// then on (a ZeroMQ ROUTER cannot drop one peer's TCP connection, so the
// client must reconnect, which makes a new connection). An address with
// `per_address` failures within `window` gets AUTH_FAILED without its token
// being checked until the window has passed. Shared by the hub and the
// shards; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hearth {

struct IdentifyLimits {
  std::uint32_t per_connection = 5;  // 0: no limit
  std::uint32_t per_address = 30;    // 0: no limit
  std::chrono::milliseconds window{60000};
};

class IdentifyThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  // Entries tracked per map; past it, expired ones are pruned and new peers
  // are not tracked until there is room.
  static constexpr std::size_t kMaxEntries = 65536;

  explicit IdentifyThrottle(IdentifyLimits limits) : limits_(limits) {}

  // True when this address may not try now.
  bool address_blocked(std::string_view address, Clock::time_point now);
  // Records a failure; true when the connection is now closed.
  bool failed(std::string_view connection, std::string_view address, Clock::time_point now);
  bool closed(std::string_view connection, Clock::time_point now);

 private:
  struct Count {
    std::uint32_t failures = 0;
    Clock::time_point since;
  };
  // The count of `key` within the window (reset when it passed), or null
  // when the map is full.
  Count* count_of(std::unordered_map<std::string, Count>& map, std::string_view key,
                  Clock::time_point now);

  const IdentifyLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Count> connections_;
  std::unordered_map<std::string, Count> addresses_;
};

}  // namespace hearth
