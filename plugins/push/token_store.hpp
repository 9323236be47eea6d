// Device tokens, kept in SQLite so they survive restarts, with an in-memory
// index for the hot path (who in this guild has a device, which tokens).
//
// The database (docs/push.md): table devices(token PRIMARY KEY, user,
// updated_ms) and members(user, guild). Every change is one transaction, in
// WAL mode: a write is atomic, and survives a crash of the process once the
// call returns. Several nodes of one host may share the file: each node
// notices another's commits (refresh_if_changed) and reloads its index.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

struct sqlite3;

namespace hearth::push {

class TokenStore {
 public:
  // Opens (creating if needed) the database at `path`; throws
  // std::runtime_error naming the path and SQLite's reason.
  // `max_devices_per_user`: above it, a user's least recently registered
  // device is forgotten.
  TokenStore(const std::string& path, std::size_t max_devices_per_user);
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // A token is at most 4096 printable ASCII characters without quotes or
  // backslashes (FCM tokens are far shorter). Empty when valid, else why not.
  static std::string check_token(const std::string& token);

  // Registers `token` as a device of `user`, who is a member of `guilds`
  // (replacing the user's earlier membership). A token registered by another
  // user moves to this one. Throws std::runtime_error on a database error.
  void add(std::uint64_t user, const std::string& token, const std::vector<std::uint64_t>& guilds);
  // Forgets `token`; with `user` != 0, only if it is that user's. Returns
  // whether it was there.
  bool remove(const std::string& token, std::uint64_t user = 0);

  std::vector<std::string> tokens_of(std::uint64_t user) const;
  // Users who are members of `guild` and have at least one device.
  std::vector<std::uint64_t> members_with_devices(std::uint64_t guild) const;
  std::size_t device_count() const;

  // Reloads the index when another connection (another node) committed.
  void refresh_if_changed();

 private:
  void exec(const char* sql);
  void reload_all();
  void reload_user_locked(std::uint64_t user);
  std::int64_t data_version();

  sqlite3* db_ = nullptr;
  const std::size_t max_devices_;
  std::int64_t seen_version_ = -1;

  mutable std::shared_mutex mu_;  // guards db_ use and the index
  std::unordered_map<std::uint64_t, std::vector<std::string>> tokens_;       // user -> tokens
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> guilds_of_;  // user -> guilds
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> members_;    // guild -> users
  std::size_t devices_ = 0;
};

}  // namespace hearth::push
