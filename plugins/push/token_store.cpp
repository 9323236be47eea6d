#include "token_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace hearth::push {
namespace {

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("push store: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::uint64_t v) {
    sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v));
    return *this;
  }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("push store: ") + sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
    sqlite3_reset(stmt_);
  }
  std::uint64_t u64(int col) {
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt_, col));
  }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

template <class T>
void erase_value(std::vector<T>& v, const T& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}

}  // namespace

TokenStore::TokenStore(const std::string& path, std::size_t max_devices_per_user)
    : max_devices_(std::max<std::size_t>(1, max_devices_per_user)) {
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open the device database " + path + ": " + why);
  }
  try {
    sqlite3_busy_timeout(db_, 2000);  // another node of this host may be writing
    // Switching to WAL takes an exclusive lock without waiting on the busy
    // handler: nodes starting together retry the set-up for a while.
    for (int attempt = 0;; ++attempt) {
      try {
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec(
            "CREATE TABLE IF NOT EXISTS devices(token TEXT PRIMARY KEY, user INTEGER NOT NULL, "
            "updated_ms INTEGER NOT NULL)");
        exec("CREATE INDEX IF NOT EXISTS devices_by_user ON devices(user)");
        exec(
            "CREATE TABLE IF NOT EXISTS members(user INTEGER NOT NULL, guild INTEGER NOT NULL, "
            "PRIMARY KEY(user, guild))");
        break;
      } catch (const std::runtime_error&) {
        const int code = sqlite3_errcode(db_);
        if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt >= 100) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::unique_lock lock(mu_);
    reload_all();
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("device database " + path + ": " + e.what());
  }
}

TokenStore::~TokenStore() {
  sqlite3_close(db_);
}

void TokenStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error(why);
  }
}

std::string TokenStore::check_token(const std::string& token) {
  if (token.empty()) return "the token is empty";
  if (token.size() > 4096) return "the token is longer than 4096 bytes";
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
      return "the token must be printable ASCII without spaces, quotes or backslashes";
    }
  }
  return {};
}

void TokenStore::add(std::uint64_t user, const std::string& token,
                     const std::vector<std::uint64_t>& guilds) {
  std::unique_lock lock(mu_);
  std::uint64_t previous_owner = 0;
  exec("BEGIN IMMEDIATE");
  try {
    Statement owner(db_, "SELECT user FROM devices WHERE token = ?");
    owner.bind(1, token);
    if (owner.step()) previous_owner = owner.u64(0);
    Statement put(db_, "INSERT OR REPLACE INTO devices(token, user, updated_ms) VALUES(?, ?, ?)");
    put.bind(1, token).bind(2, user).bind(3, now_ms()).run();
    // Beyond the per-user limit, the least recently registered devices go.
    Statement trim(db_,
                   "DELETE FROM devices WHERE user = ?1 AND token NOT IN (SELECT token FROM "
                   "devices WHERE user = ?1 ORDER BY updated_ms DESC, rowid DESC LIMIT ?2)");
    trim.bind(1, user).bind(2, static_cast<std::uint64_t>(max_devices_)).run();
    Statement forget(db_, "DELETE FROM members WHERE user = ?");
    forget.bind(1, user).run();
    Statement join(db_, "INSERT OR IGNORE INTO members(user, guild) VALUES(?, ?)");
    for (std::uint64_t g : guilds) {
      join.bind(1, user).bind(2, g).run();
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  reload_user_locked(user);
  if (previous_owner != 0 && previous_owner != user) reload_user_locked(previous_owner);
}

bool TokenStore::remove(const std::string& token, std::uint64_t user) {
  std::unique_lock lock(mu_);
  Statement owner(db_, "SELECT user FROM devices WHERE token = ?");
  owner.bind(1, token);
  if (!owner.step()) return false;
  const std::uint64_t found = owner.u64(0);
  if (user != 0 && found != user) return false;
  Statement del(db_, "DELETE FROM devices WHERE token = ?");
  del.bind(1, token).run();
  reload_user_locked(found);
  return true;
}

// Rebuilds one user's entries of the index from the database.
void TokenStore::reload_user_locked(std::uint64_t user) {
  if (auto it = tokens_.find(user); it != tokens_.end()) {
    devices_ -= it->second.size();
    tokens_.erase(it);
  }
  if (auto it = guilds_of_.find(user); it != guilds_of_.end()) {
    for (std::uint64_t g : it->second) {
      auto m = members_.find(g);
      if (m == members_.end()) continue;
      erase_value(m->second, user);
      if (m->second.empty()) members_.erase(m);
    }
    guilds_of_.erase(it);
  }
  Statement devices(db_, "SELECT token FROM devices WHERE user = ? ORDER BY updated_ms");
  devices.bind(1, user);
  std::vector<std::string> tokens;
  while (devices.step()) tokens.push_back(devices.text(0));
  if (tokens.empty()) return;  // without a device, a user's guilds do not matter here
  devices_ += tokens.size();
  tokens_[user] = std::move(tokens);
  Statement guilds(db_, "SELECT guild FROM members WHERE user = ?");
  guilds.bind(1, user);
  auto& mine = guilds_of_[user];
  while (guilds.step()) {
    mine.push_back(guilds.u64(0));
    members_[mine.back()].push_back(user);
  }
}

void TokenStore::reload_all() {
  tokens_.clear();
  guilds_of_.clear();
  members_.clear();
  devices_ = 0;
  Statement devices(db_, "SELECT user, token FROM devices ORDER BY updated_ms");
  while (devices.step()) {
    tokens_[devices.u64(0)].push_back(devices.text(1));
    ++devices_;
  }
  Statement guilds(db_, "SELECT user, guild FROM members");
  while (guilds.step()) {
    const std::uint64_t user = guilds.u64(0);
    if (!tokens_.contains(user)) continue;
    guilds_of_[user].push_back(guilds.u64(1));
    members_[guilds.u64(1)].push_back(user);
  }
  seen_version_ = data_version();
}

std::int64_t TokenStore::data_version() {
  Statement v(db_, "PRAGMA data_version");
  return v.step() ? static_cast<std::int64_t>(v.u64(0)) : -1;
}

void TokenStore::refresh_if_changed() {
  std::unique_lock lock(mu_);
  if (data_version() != seen_version_) reload_all();
}

std::vector<std::string> TokenStore::tokens_of(std::uint64_t user) const {
  std::shared_lock lock(mu_);
  auto it = tokens_.find(user);
  return it == tokens_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::uint64_t> TokenStore::members_with_devices(std::uint64_t guild) const {
  std::shared_lock lock(mu_);
  auto it = members_.find(guild);
  return it == members_.end() ? std::vector<std::uint64_t>{} : it->second;
}

std::size_t TokenStore::device_count() const {
  std::shared_lock lock(mu_);
  return devices_;
}

}  // namespace hearth::push
