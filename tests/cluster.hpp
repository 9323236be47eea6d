// Test harness: real `hearth` processes on loopback, and a fleet of client
// sessions that records everything it receives.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hearth/client.hpp"

namespace hearth::test {

// A block of 20 loopback ports for this test process (by pid, so parallel
// ctest runs do not collide), below the kernel's ephemeral port range.
int port_base();
std::string tcp(int port);

class Process {
 public:
  // Starts `program` (default: the hearth binary) with args; stdout and
  // stderr go to a log file.
  Process(const std::string& name, const std::vector<std::string>& args,
          const std::string& program = HEARTH_BIN);
  ~Process();  // SIGINT, then SIGKILL after 5 s
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool alive();
  pid_t pid() const { return pid_; }
  void kill_hard();
  // Waits for a line containing `text` in the log; false on timeout.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const;
  std::string log() const;
  // Waits for the process to exit by itself; its exit status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  // SIGTERM: a node drains (docs/reliability.md) and exits by itself.
  void drain();
  // Sends SIGINT (stop at once) and returns the exit status (-1 on timeout).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// Arguments for `hearth all-in-one` with 2 shards: publishers on `base`, the
// broker's node socket on base + 1, sessions on base + 2; then `extra`.
std::vector<std::string> all_in_one_args(int base, const std::vector<std::string>& extra = {});

// Arguments for a `hearth node` with 2 shards, a 200 ms heartbeat and
// --insecure (no keys), then `extra`.
std::vector<std::string> node_args(const std::string& name, const std::string& roles,
                                   int broker_port, int listen_port,
                                   const std::vector<std::string>& extra = {});

// Arguments for a `hearth node` with the presence plugin (required) loaded.
std::vector<std::string> presence_node_args(const std::string& name, const std::string& roles,
                                            int broker_port, int listen_port, int grace_ms);

// Runs `hearth args...` (or `program args...`) to completion; returns its
// exit code and output.
int run_hearth(const std::vector<std::string>& args, std::string* output,
               const std::string& program = HEARTH_BIN);

struct SessionRecord {
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
  std::uint64_t session_id = 0;
  std::set<std::uint64_t> subscribed;
  std::vector<client::Event> events;
  std::vector<client::SessionClosed> closed;
  // The seq of every stream item (events, SUBSCRIBED, UNSUBSCRIBED,
  // GUILD_UNAVAILABLE) in arrival order: 1, 2, 3, ... if nothing went wrong.
  std::vector<std::uint64_t> stream;
  std::uint64_t unavailable = 0;  // GUILD_UNAVAILABLE messages
};

// "" if the session's stream is exactly 1, 2, ..., n; otherwise where it is not.
std::string stream_gap(const SessionRecord& s);

// Many sessions multiplexed over a few connections per endpoint.
class Fleet {
 public:
  // sessions[i] goes to endpoints[i % endpoints.size()], connection
  // (i / endpoints.size()) % connections_per_endpoint.
  Fleet(const std::vector<std::string>& endpoints, unsigned connections_per_endpoint,
        std::vector<SessionRecord> sessions);

  // Polls every connection once; returns messages handled.
  std::size_t pump(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // Pumps until pred() or timeout; returns pred().
  template <class Pred>
  bool pump_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      if (pump() == 0) pump(std::chrono::milliseconds(2));
    }
    return true;
  }
  bool all_subscribed() const;
  std::uint64_t events_received() const { return events_; }
  // SUBSCRIBED messages with code 0, counting re-subscriptions after a move.
  std::uint64_t subscribed_messages() const { return subscribed_messages_; }
  std::vector<SessionRecord>& sessions() { return sessions_; }
  std::vector<client::ServerError>& errors() { return errors_; }
  void heartbeat_all();

 private:
  struct Conn {
    std::unique_ptr<client::SessionClient> client;
    std::map<std::uint64_t, std::size_t> by_request;  // request id -> session index
    std::map<std::uint64_t, std::size_t> by_session;
  };
  std::vector<Conn> conns_;
  std::vector<SessionRecord> sessions_;
  std::vector<client::ServerError> errors_;
  std::uint64_t events_ = 0;
  std::uint64_t subscribed_messages_ = 0;
  std::size_t subscribed_links_ = 0;
  std::size_t wanted_links_ = 0;
};

}  // namespace hearth::test
