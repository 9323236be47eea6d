// Hearth C++ client library: subscribe as sessions on a session node, and
// publish to a broker. A thin layer over protocol version 2 (docs/protocol.md).
//
// Threads: each SessionClient and Publisher is used by one thread at a time
// (any thread, but never two at once). Objects of different clients are
// independent.
// Ownership: every Message is a plain value the caller owns; payloads are
// copied out of the ZeroMQ frames. The client keeps no per-session state: the
// caller holds session ids, resume tokens and the last seq it processed.
// Errors: constructors and reconnect() throw hearth::client::Error when an
// endpoint cannot be used. Everything the server says, errors included,
// arrives through poll() as messages, never as throws. A server message the
// client cannot decode arrives as ServerError(MALFORMED, ref 0); a message type
// this library does not know is skipped, as the protocol's versioning rule asks.
// Sends queue in ZeroMQ (up to 100,000 messages) and return at once; they
// block only while that queue is full, and a Publisher's for at most its send
// timeout (publish() then returns false); a Publisher's queue is also bounded
// in bytes. Over CURVE a SessionClient send that cannot be queued within 10 s
// throws Error: once the server refused the handshake (wrong key, or an
// endpoint without CURVE), ZeroMQ has nowhere to queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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
  std::uint64_t heartbeat_ms;     // send something at least this often
  std::string resume_token;       // 16 bytes; needed by resume(). Keep it secret.
  std::uint64_t resume_grace_ms;  // how long the session outlives its connection
};

// Stream items (Subscribed, Event, Unsubscribed, GuildUnavailable) carry the
// session's `seq`: 1, 2, 3, ... with no gaps across all four kinds, for the
// life of the session, RESUMEs included. stream_position() reads it.

// The session receives a guild's events from now on (code 0), or never will (code != 0).
struct Subscribed {
  std::uint64_t session_id;
  std::uint64_t seq;
  std::uint64_t guild_id;
  std::uint32_t code;
  std::uint64_t epoch;       // the guild's sequence the events that follow belong to
  std::uint64_t guild_seq;   // the guild's position when the session joined
  std::uint64_t request_id;  // the IDENTIFY or SUBSCRIBE that asked; 0 when the node re-subscribed
  bool refetch;              // events may have been missed: reload the guild's state
  std::string reason;        // code != 0: why (a plugin's veto, the token's guilds)
};

struct Event {
  std::uint64_t session_id;
  std::uint64_t seq;
  std::uint64_t guild_id;
  std::uint64_t kind;
  std::uint64_t epoch;      // compare for equality only
  std::uint64_t guild_seq;  // per guild and epoch, in publish order
  std::string payload;      // the publisher's bytes, untouched
};

// The guild left the session's stream (answer to unsubscribe()).
struct Unsubscribed {
  std::uint64_t session_id;
  std::uint64_t seq;
  std::uint64_t guild_id;
  std::uint64_t request_id;
};

// The guild's events may be missed until a Subscribed (refetch) for it follows;
// the node re-subscribes by itself.
struct GuildUnavailable {
  std::uint64_t session_id;
  std::uint64_t seq;
  std::uint64_t guild_id;
  std::uint32_t code;
};

// Answer to resume(): `replayed` stream items follow, from last_seq + 1 on.
struct Resumed {
  std::uint64_t request_id;
  std::uint64_t session_id;
  std::uint64_t replayed;
};

// resume() was refused; unless the code is AUTH_FAILED by mistake, the session
// is gone: identify() again.
// The node is draining (docs/protocol.md, RECONNECT): open a new session on
// another node, then LEAVE this one before `deadline_ms` passes. It is served
// until then.
struct Reconnect {
  std::uint64_t session_id;
  std::uint64_t deadline_ms;
};

struct InvalidSession {
  std::uint64_t request_id;
  std::uint64_t session_id;
  std::uint32_t code;
  std::string reason;
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
  // Sessions attached to this connection (always 0 from a broker). Fewer than
  // you hold, with no identify/resume/leave unanswered: resume the others.
  std::uint64_t sessions;
};

struct PublishAck {
  std::uint64_t ack_id;
  std::uint64_t guild_id;
  std::uint64_t guild_seq;
  std::uint64_t epoch;
};

// A message from a plugin to one session (PLUGIN_MESSAGE). Not a stream item.
struct PluginMessage {
  std::uint64_t session_id;
  std::uint64_t kind;
  std::string payload;
};

using Message =
    std::variant<Ready, Subscribed, Event, SessionClosed, ServerError, HeartbeatAck, PublishAck,
                 PluginMessage, Unsubscribed, GuildUnavailable, Resumed, InvalidSession, Reconnect>;

// IDENTIFY's optional presence field: [status, activity] (docs/presence.md:
// 1 online, 2 idle, 3 do-not-disturb, 4 invisible).
struct InitialPresence {
  std::uint64_t status;
  std::string activity;
};

struct StreamPosition {
  std::uint64_t session_id;
  std::uint64_t seq;
};
// The session and seq of a stream item; nullopt for any other message.
std::optional<StreamPosition> stream_position(const Message& m);

// CURVE (docs/security.md): the connection is encrypted, and the client talks
// only to the server holding `server_public_key`. Keys are 40-character Z85
// strings, as `hearth keygen` writes them (NAME.pub, NAME.key).
struct Curve {
  std::string server_public_key;  // the session node's, or the broker's
  // This client's own pair. A publisher needs the pair the broker lists for
  // it; a session client may leave both empty to use a fresh pair (users
  // authenticate by token, not by key).
  std::string public_key;
  std::string secret_key;

  // Reads the server's NAME.pub and, when given, this client's NAME.key (its
  // public key is derived from the secret one). Throws Error.
  static Curve from_files(const std::string& server_public_file,
                          const std::string& own_secret_file = "");
};

// One connection to a session node, carrying any number of sessions
// (multiplexing: each identify() adds one). Every call below only sends; the
// answers arrive through poll().
class SessionClient {
 public:
  // `endpoint` like "tcp://127.0.0.1:7500". Connects lazily, as ZeroMQ does;
  // with `curve`, over CURVE (a node whose client endpoint speaks NULL, or
  // holds another key, never answers).
  explicit SessionClient(const std::string& endpoint,
                         const std::optional<Curve>& curve = std::nullopt);
  ~SessionClient();
  SessionClient(const SessionClient&) = delete;
  SessionClient& operator=(const SessionClient&) = delete;

  // IDENTIFY. Answer: Ready (then one Subscribed per guild), or ServerError
  // with ref = request_id. `presence`, when given, is sent as IDENTIFY's
  // optional presence field (the session's initial status; docs/presence.md).
  void identify(std::uint64_t request_id, std::uint64_t user_id, std::string_view token,
                const std::vector<std::uint64_t>& guilds,
                const std::optional<InitialPresence>& presence = std::nullopt);
  // Answer: HeartbeatAck with the nonce.
  void heartbeat(std::uint64_t nonce = 0);
  // Answer: SessionClosed(CLOSED_BY_CLIENT), or ServerError with ref = session_id.
  void leave(std::uint64_t session_id);
  // Adds guilds to a live session. Answer: one Subscribed per guild not yet
  // followed, or ServerError with ref = request_id.
  void subscribe(std::uint64_t request_id, std::uint64_t session_id,
                 const std::vector<std::uint64_t>& guilds);
  // Removes guilds. Answer: one Unsubscribed per distinct guild, or ServerError.
  void unsubscribe(std::uint64_t request_id, std::uint64_t session_id,
                   const std::vector<std::uint64_t>& guilds);
  // Continues a session on this connection. `last_seq` is the seq of the last
  // stream item processed (0 if none). Answer: Resumed and the replayed items,
  // or InvalidSession.
  void resume(std::uint64_t request_id, std::uint64_t session_id, std::string_view resume_token,
              std::uint64_t last_seq);
  // Sends PLUGIN_MESSAGE(kind, payload) for a session to the plugin that
  // registered `kind`; answers arrive as PluginMessage or ServerError.
  void plugin_message(std::uint64_t session_id, std::uint64_t kind, std::string_view payload);
  // Sends raw frames (for tests of malformed input).
  void send_raw(const std::vector<std::string>& frames);

  // Closes this connection and opens a new one to the same endpoint. Messages
  // not yet received or sent on the old one are discarded; the node sees a new
  // connection with no sessions, so resume() each session afterwards. Throws
  // Error (keeping the old connection) if a new socket cannot be opened.
  void reconnect();

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
  // `send_timeout` bounds how long a send waits while the queue to the broker
  // is full: 100,000 messages or `max_queued_bytes` not yet written to the
  // network (the broker is gone, restarting, or not reading). With `curve`,
  // over CURVE: a broker that does not list this key, or a publisher without
  // one to a broker that requires it, never answers (publish() times out).
  explicit Publisher(const std::string& endpoint,
                     std::chrono::milliseconds send_timeout = std::chrono::seconds(5),
                     std::size_t max_queued_bytes = 64 << 20,
                     const std::optional<Curve>& curve = std::nullopt);
  Publisher(const std::string& endpoint, const std::optional<Curve>& curve);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // ack_id 0 asks for no acknowledgement; otherwise a PublishAck or
  // ServerError with that id arrives through poll(). Returns false, having
  // sent nothing, when the queue stayed full for the send timeout: back off
  // and publish again (docs/protocol.md, publisher back-pressure).
  bool publish(std::uint64_t guild_id, std::uint64_t kind, std::string_view payload,
               std::uint64_t ack_id = 0);
  // Answer: HeartbeatAck (sessions 0), so a publisher can check the broker is
  // there. False when it could not be queued within the send timeout.
  bool heartbeat(std::uint64_t nonce = 0);
  void send_raw(const std::vector<std::string>& frames);
  std::size_t poll(std::vector<Message>& out, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Human-readable name of a protocol code ("SLOW_CONSUMER").
const char* code_name(std::uint32_t code);

}  // namespace hearth::client
