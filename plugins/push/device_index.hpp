// The devices the push plugin knows, in memory: who owns which token, each
// user's tokens (oldest first), and which users with a device are members
// of which guild. Not thread-safe: TokenStore locks around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace hearth::push {

class DeviceIndex {
 public:
  // `max_devices`: above it, a user's oldest device is forgotten.
  explicit DeviceIndex(std::size_t max_devices) : max_devices_(max_devices) {}

  // `token` becomes `user`'s newest device (taken from any other owner), and
  // `guilds` the user's memberships.
  void add(std::uint64_t user, const std::string& token, const std::vector<std::uint64_t>& guilds);
  // Forgets `token`; with `user`, only if it is that user's. Whether it was.
  bool remove(const std::string& token, std::optional<std::uint64_t> user);
  // The token's owner (user ids are any uint64, 0 included).
  std::optional<std::uint64_t> owner(const std::string& token) const;

  // Loading what the database holds: devices oldest first, then memberships.
  void load_device(std::uint64_t user, const std::string& token);
  void load_membership(std::uint64_t user, std::uint64_t guild);
  void clear();

  std::vector<std::string> tokens_of(std::uint64_t user) const;
  std::vector<std::uint64_t> members_with_devices(std::uint64_t guild) const;
  std::size_t device_count() const { return owner_.size(); }

 private:
  void erase_token(std::uint64_t user, const std::string& token);
  void drop_memberships(std::uint64_t user);

  std::size_t max_devices_;
  std::unordered_map<std::string, std::uint64_t> owner_;                     // token -> user
  std::unordered_map<std::uint64_t, std::vector<std::string>> tokens_;       // user -> tokens
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> guilds_of_;  // user -> guilds
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> members_;    // guild -> users
};

}  // namespace hearth::push
