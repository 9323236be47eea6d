// Hearth C++ client library: subscribe as sessions on a session node, and
// publish to a broker. A thin layer over the protocol in docs/protocol.md.
//
// Threads: each SessionClient and Publisher is used by one thread at a time.
// Errors: constructors throw hearth::client::Error when an endpoint cannot be
// used; protocol errors from the server arrive as messages, never as throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hearth::client {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Answer to identify(): the session now exists on the node.
struct Ready {
  std::uint64_t request_id;
  std::uint64_t session_id;
  std::uint64_t heartbeat_ms;  // send heartbeat() at least this often
};

// The session receives a guild's events from now on (code 0), or never will (code != 0).
struct Subscribed {
  std::uint64_t session_id;
  std::uint64_t guild_id;
  std::uint32_t code;
  std::uint64_t guild_seq;  // the guild's last sequence number when the session joined
};

struct Event {
  std::uint64_t session_id;
  std::uint64_t seq;  // per session: 1, 2, 3, ... with no gaps
  std::uint64_t guild_id;
  std::uint64_t kind;
  std::uint64_t guild_seq;  // per guild, in publish order
  std::string payload;      // the publisher's bytes, untouched
};

struct SessionClosed {
  std::uint64_t session_id;
  std::uint32_t code;
  std::string reason;
};

struct ServerError {
  std::uint32_t code;
  std::string text;
  std::uint64_t ref;  // request id, ack id or session id the error refers to, or 0
};

struct HeartbeatAck {
  std::uint64_t nonce;
};

struct PublishAck {
  std::uint64_t ack_id;
  std::uint64_t guild_id;
  std::uint64_t guild_seq;
};

// A message from a plugin to one session (PLUGIN_MESSAGE).
struct PluginMessage {
  std::uint64_t session_id;
  std::uint64_t kind;
  std::string payload;
};

using Message = std::variant<Ready, Subscribed, Event, SessionClosed, ServerError, HeartbeatAck,
                             PublishAck, PluginMessage>;

// One connection to a session node, carrying any number of sessions
// (multiplexing: each identify() adds one).
class SessionClient {
 public:
  // `endpoint` like "tcp://127.0.0.1:7500". Connects lazily, as ZeroMQ does.
  explicit SessionClient(const std::string& endpoint);
  ~SessionClient();
  SessionClient(const SessionClient&) = delete;
  SessionClient& operator=(const SessionClient&) = delete;

  // Sends IDENTIFY; the answer (Ready or ServerError with ref = request_id)
  // arrives through poll().
  void identify(std::uint64_t request_id, std::uint64_t user_id, std::string_view token,
                const std::vector<std::uint64_t>& guilds);
  void heartbeat(std::uint64_t nonce = 0);
  void leave(std::uint64_t session_id);
  // Sends PLUGIN_MESSAGE(kind, payload) for a session to the plugin that
  // registered `kind`; answers arrive as PluginMessage or ServerError.
  void plugin_message(std::uint64_t session_id, std::uint64_t kind, std::string_view payload);
  // Sends raw frames (for tests of malformed input).
  void send_raw(const std::vector<std::string>& frames);

  // Appends what arrives within `timeout` (one network message may hold many
  // events). Returns the number of messages appended.
  std::size_t poll(std::vector<Message>& out, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Publisher {
 public:
  // `endpoint` is the broker's publisher endpoint, like "tcp://127.0.0.1:7400".
  explicit Publisher(const std::string& endpoint);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // ack_id 0 asks for no acknowledgement; otherwise a PublishAck or
  // ServerError with that id arrives through poll().
  void publish(std::uint64_t guild_id, std::uint64_t kind, std::string_view payload,
               std::uint64_t ack_id = 0);
  void send_raw(const std::vector<std::string>& frames);
  std::size_t poll(std::vector<Message>& out, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Human-readable name of a protocol code ("SLOW_CONSUMER").
const char* code_name(std::uint32_t code);

}  // namespace hearth::client
