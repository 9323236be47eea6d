#include "token_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace hearth::push {
namespace {

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db));
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
    throw std::runtime_error(sqlite3_errmsg(db_));
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

}  // namespace

TokenStore::TokenStore(const std::string& path, std::size_t max_devices_per_user,
                       std::size_t max_pending, Warn warn)
    : max_devices_(std::max<std::size_t>(1, max_devices_per_user)),
      max_pending_(max_pending),
      warn_(std::move(warn)),
      index_(max_devices_) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open the device database " + path + ": " + why);
  }
  try {
    set_up_schema();
    seen_version_ = data_version();
    index_ = read_all();
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("device database " + path + ": " + e.what());
  }
  writer_ = std::thread([this] { writer_loop(); });
}

TokenStore::~TokenStore() {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
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

void TokenStore::set_up_schema() {
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
      return;
    } catch (const std::runtime_error&) {
      const int code = sqlite3_errcode(db_);
      if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt >= 100) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
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

TokenStore::Change TokenStore::add(std::uint64_t user, const std::string& token,
                                   const std::vector<std::uint64_t>& guilds) {
  {
    std::unique_lock lock(mu_);
    if (queue_.size() >= max_pending_) return Change::kBusy;
    index_.add(user, token, guilds);
    queue_.push_back(Op{true, user, token, guilds, now_ms()});
    ++queued_;
  }
  wake_.notify_all();
  return Change::kDone;
}

TokenStore::Change TokenStore::remove(const std::string& token, std::optional<std::uint64_t> user) {
  {
    std::unique_lock lock(mu_);
    const auto owner = index_.owner(token);
    if (!owner || (user && *owner != *user)) return Change::kNotFound;
    if (queue_.size() >= max_pending_) return Change::kBusy;
    index_.remove(token, owner);
    queue_.push_back(Op{false, *owner, token, {}, 0});
    ++queued_;
  }
  wake_.notify_all();
  return Change::kDone;
}

void TokenStore::flush() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = queued_;
  wake_.notify_all();
  wake_.wait(lock, [&] { return written_ >= target; });
}

void TokenStore::writer_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait_for(lock, std::chrono::milliseconds(250),
                   [&] { return stopping_ || !queue_.empty(); });
    if (stopping_ && queue_.empty()) break;
    std::vector<Op> batch;
    batch.swap(queue_);
    const std::uint64_t upto = queued_;
    lock.unlock();
    try {
      if (!batch.empty()) write(batch);
    } catch (const std::exception& e) {
      if (warn_) warn_(std::string("device database: ") + e.what());
      lock.lock();
      failures_ += batch.size();
      lock.unlock();
    }
    // Another node of this host committed: reload (outside the lock).
    std::optional<DeviceIndex> fresh;
    try {
      if (const auto version = data_version(); version != seen_version_) {
        seen_version_ = version;
        fresh = read_all();
      }
    } catch (const std::exception& e) {
      if (warn_) warn_(std::string("device database reload: ") + e.what());
    }
    lock.lock();
    written_ = upto;
    if (fresh) install_locked(std::move(*fresh));
    wake_.notify_all();
  }
}

// One transaction for the whole batch.
void TokenStore::write(const std::vector<Op>& batch) {
  exec("BEGIN IMMEDIATE");
  try {
    Statement put(db_, "INSERT OR REPLACE INTO devices(token, user, updated_ms) VALUES(?, ?, ?)");
    // Beyond the per-user limit, the least recently registered devices go.
    Statement trim(db_,
                   "DELETE FROM devices WHERE user = ?1 AND token NOT IN (SELECT token FROM "
                   "devices WHERE user = ?1 ORDER BY updated_ms DESC, rowid DESC LIMIT ?2)");
    Statement forget(db_, "DELETE FROM members WHERE user = ?");
    Statement join(db_, "INSERT OR IGNORE INTO members(user, guild) VALUES(?, ?)");
    Statement drop(db_, "DELETE FROM devices WHERE token = ? AND user = ?");
    for (const Op& op : batch) {
      if (!op.add) {
        drop.bind(1, op.token).bind(2, op.user).run();
        continue;
      }
      put.bind(1, op.token).bind(2, op.user).bind(3, op.when_ms).run();
      trim.bind(1, op.user).bind(2, static_cast<std::uint64_t>(max_devices_)).run();
      forget.bind(1, op.user).run();
      for (std::uint64_t g : op.guilds) join.bind(1, op.user).bind(2, g).run();
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

// What the database holds, read without holding the index's lock (a large
// table takes a while, and shards must not wait for it).
DeviceIndex TokenStore::read_all() {
  DeviceIndex fresh(max_devices_);
  Statement devices(db_, "SELECT user, token FROM devices ORDER BY updated_ms, rowid");
  while (devices.step()) fresh.load_device(devices.u64(0), devices.text(1));
  Statement guilds(db_, "SELECT user, guild FROM members");
  while (guilds.step()) fresh.load_membership(guilds.u64(0), guilds.u64(1));
  return fresh;
}

// Takes `fresh` as the index, with the changes not yet written on top.
void TokenStore::install_locked(DeviceIndex fresh) {
  index_ = std::move(fresh);
  for (const Op& op : queue_) {
    if (op.add) {
      index_.add(op.user, op.token, op.guilds);
    } else {
      index_.remove(op.token, op.user);
    }
  }
}

std::int64_t TokenStore::data_version() {
  Statement v(db_, "PRAGMA data_version");
  return v.step() ? static_cast<std::int64_t>(v.u64(0)) : -1;
}

std::vector<std::string> TokenStore::tokens_of(std::uint64_t user) const {
  std::shared_lock lock(mu_);
  return index_.tokens_of(user);
}

std::vector<std::uint64_t> TokenStore::members_with_devices(std::uint64_t guild) const {
  std::shared_lock lock(mu_);
  return index_.members_with_devices(guild);
}

std::size_t TokenStore::device_count() const {
  std::shared_lock lock(mu_);
  return index_.device_count();
}

std::uint64_t TokenStore::write_failures() const {
  std::shared_lock lock(mu_);
  return failures_;
}

}  // namespace hearth::push
