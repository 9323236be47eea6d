// Device tokens, kept in SQLite so they survive restarts, with an in-memory
// index (device_index.hpp) that every lookup uses.
//
// A change is applied to the index at once and written to the database by
// one writer thread, in batches of one transaction each: a registration
// costs the calling shard microseconds, and a storm of them (every app
// re-registering after an outage) costs one commit per batch, not one each.
// At most `max_pending` changes wait for the writer; beyond, a change is
// refused (kBusy) and the client asked to retry. The database is in WAL mode
// with synchronous=NORMAL: a committed batch survives a crash of the process;
// changes still waiting (milliseconds' worth) do not, and a node that stops
// writes them first.
//
// Tables (docs/push.md): devices(token PRIMARY KEY, user, updated_ms) and
// members(user, guild). Several nodes of one host may share the file: the
// writer checks every 250 ms whether another connection committed and, if
// so, reloads the index.
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "device_index.hpp"

struct sqlite3;

namespace hearth::push {

class TokenStore {
 public:
  enum class Change { kDone, kNotFound, kBusy };
  using Warn = std::function<void(const std::string&)>;

  // Opens (creating if needed) the database at `path` and loads the index;
  // throws std::runtime_error naming the path and SQLite's reason. `warn`
  // (optional, called from the writer thread) hears of failed writes.
  TokenStore(const std::string& path, std::size_t max_devices_per_user,
             std::size_t max_pending = 100000, Warn warn = {});
  // Writes what is still waiting, then closes the database.
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // A token is at most 4096 printable ASCII characters without quotes or
  // backslashes (FCM tokens are far shorter). Empty when valid, else why not.
  static std::string check_token(const std::string& token);

  // Registers `token` as `user`'s newest device, `user` being a member of
  // `guilds` (replacing the user's earlier memberships). A token registered
  // by another user moves to this one.
  Change add(std::uint64_t user, const std::string& token,
             const std::vector<std::uint64_t>& guilds);
  // Forgets `token`; with `user`, only if it is that user's.
  Change remove(const std::string& token, std::optional<std::uint64_t> user = std::nullopt);
  // Returns once every change made before the call is committed (or failed).
  void flush();

  std::vector<std::string> tokens_of(std::uint64_t user) const;
  // Users who are members of `guild` and have at least one device.
  std::vector<std::uint64_t> members_with_devices(std::uint64_t guild) const;
  std::size_t device_count() const;
  std::uint64_t write_failures() const;

 private:
  struct Op {
    bool add = true;
    std::uint64_t user = 0;
    std::string token;
    std::vector<std::uint64_t> guilds;
    std::uint64_t when_ms = 0;
  };

  void set_up_schema();
  void exec(const char* sql);
  void write(const std::vector<Op>& batch);
  DeviceIndex read_all();
  void install_locked(DeviceIndex fresh);
  std::int64_t data_version();
  void writer_loop();

  sqlite3* db_ = nullptr;  // after construction, the writer thread's alone
  const std::size_t max_devices_;
  const std::size_t max_pending_;
  Warn warn_;
  std::int64_t seen_version_ = -1;

  mutable std::shared_mutex mu_;  // guards what follows
  std::condition_variable_any wake_;
  DeviceIndex index_;
  std::vector<Op> queue_;                   // applied to index_, not yet written
  std::uint64_t queued_ = 0, written_ = 0;  // changes ever queued / done writing
  std::uint64_t failures_ = 0;
  bool stopping_ = false;

  std::thread writer_;
};

}  // namespace hearth::push
