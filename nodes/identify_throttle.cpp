#include "nodes/identify_throttle.hpp"

namespace hearth {

IdentifyThrottle::Count* IdentifyThrottle::count_of(std::unordered_map<std::string, Count>& map,
                                                    std::string_view key, Clock::time_point now) {
  auto it = map.find(std::string(key));
  if (it == map.end()) {
    if (map.size() >= kMaxEntries) {
      std::erase_if(map, [&](const auto& e) { return now - e.second.since >= limits_.window; });
      if (map.size() >= kMaxEntries) return nullptr;
    }
    it = map.emplace(std::string(key), Count{0, now}).first;
  }
  if (now - it->second.since >= limits_.window) it->second = Count{0, now};
  return &it->second;
}

bool IdentifyThrottle::address_blocked(std::string_view address, Clock::time_point now) {
  if (address.empty() || limits_.per_address == 0) return false;
  std::lock_guard lock(mu_);
  auto it = addresses_.find(std::string(address));
  if (it == addresses_.end()) return false;
  if (now - it->second.since >= limits_.window) {
    addresses_.erase(it);
    return false;
  }
  return it->second.failures >= limits_.per_address;
}

bool IdentifyThrottle::failed(std::string_view connection, std::string_view address,
                              Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!address.empty() && limits_.per_address != 0) {
    if (Count* c = count_of(addresses_, address, now)) ++c->failures;
  }
  if (limits_.per_connection == 0) return false;
  Count* c = count_of(connections_, connection, now);
  return c && ++c->failures >= limits_.per_connection;
}

bool IdentifyThrottle::closed(std::string_view connection, Clock::time_point now) {
  if (limits_.per_connection == 0) return false;
  std::lock_guard lock(mu_);
  if (connections_.empty()) return false;
  auto it = connections_.find(std::string(connection));
  if (it == connections_.end()) return false;
  if (now - it->second.since >= limits_.window) {
    connections_.erase(it);
    return false;
  }
  return it->second.failures >= limits_.per_connection;
}

}  // namespace hearth
