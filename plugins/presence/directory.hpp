// The presence directory: where a user's status is the same across session
// nodes (docs/presence.md, "Per user across session nodes").
//
// Each user belongs to one directory guild (a reserved guild id). Guilds
// register the users present in them there; every status set is sent there
// too, and the directory forwards the newest one to every guild registered for
// the user. Statuses are last-writer-wins registers ordered by their stamp
// (set time in wall-clock microseconds, strictly increasing per session node),
// so guilds converge on the same status whatever order messages arrive in, and
// a directory that lost its state (a move, a restart) is rebuilt from the
// guilds' periodic re-registrations. This file is the pure state: no host.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "shared/untrusted_msgpack.hpp"

namespace hearth::presence {

struct StampedStatus {
  std::uint8_t status = 0;  // 1..4; 0 with stamp 0: nothing known
  std::string activity;
  std::uint64_t stamp = 0;  // 0: never set
};

// A status the directory sends to one guild (kind kApplyKind).
struct Apply {
  std::uint64_t guild = 0;
  std::uint64_t user = 0;
  StampedStatus status;
};

// The users of one directory guild, on the shard that owns it.
class UserDirectory {
 public:
  // A status set: when newer than what is known, sent to every guild
  // registered for the user.
  void set(std::uint64_t user, const StampedStatus& s, std::uint64_t now_ms,
           std::vector<Apply>* out);
  // `guild` shows `user` with status `shown`. A newer status than the
  // directory's is adopted and sent to the user's other guilds (a set the
  // directory missed); an older one is corrected. With `answer`, the guild
  // waits for the directory's status and is always answered (stamp 0: none).
  void reg(std::uint64_t guild, std::uint64_t user, const StampedStatus& shown, bool answer,
           std::uint64_t now_ms, std::vector<Apply>* out);
  // `guild` no longer has `user`; a user left in no guild is forgotten.
  void unreg(std::uint64_t guild, std::uint64_t user);
  // Forgets registrations (and users without any) not refreshed since
  // `before_ms`: guilds that moved away or ended without telling.
  void expire(std::uint64_t before_ms);
  bool empty() const { return users_.empty(); }
  std::size_t size() const { return users_.size(); }

 private:
  struct Entry {
    StampedStatus status;
    std::unordered_map<std::uint64_t, std::uint64_t> guilds;  // guild -> last registered (ms)
    std::uint64_t touched_ms = 0;
  };
  static void send_to_all(std::uint64_t user, const Entry& e, std::uint64_t except,
                          std::vector<Apply>* out);
  std::unordered_map<std::uint64_t, Entry> users_;
};

// ---- messages (MessagePack) ----

// To a directory guild, kind kDirectoryKind: [op, ...].
enum class DirectoryOp : std::uint8_t { kSet = 1, kRegister = 2, kUnregister = 3 };

struct Registration {
  std::uint64_t user = 0;
  StampedStatus shown;
  bool answer = false;
};

std::string pack_directory_set(std::uint64_t user, const StampedStatus& s);
std::string pack_directory_register(std::uint64_t guild, const std::vector<Registration>& users);
std::string pack_directory_unregister(std::uint64_t guild, std::uint64_t user);
// To a guild, kind kApplyKind: [user, status, activity, stamp].
std::string pack_apply(const Apply& a);
bool parse_apply(const void* data, std::size_t size, Apply* out);

// Reads one directory message and applies it; false when malformed.
bool apply_directory_message(UserDirectory& dir, const void* data, std::size_t size,
                             std::uint64_t now_ms, std::vector<Apply>* out);

}  // namespace hearth::presence
