// Hearth wire protocol: the numbers a client needs, and nothing else.
//
// Stability promise: once released, a value in this file never changes meaning.
// New message types, error codes and trailing header fields may be added; none
// is removed or renumbered. docs/protocol.md is the normative description of
// every frame; this header only names its constants for C++ users.
#pragma once

#include <cstdint>

namespace hearth::protocol {

// The first element of every header array. A peer answers a header whose
// version it does not speak with ERROR(kUnsupportedVersion) and ignores it.
inline constexpr std::uint32_t kVersion = 2;

// Message types: the second element of every header array.
enum class Type : std::uint32_t {
  // client <-> session node
  kIdentify = 1,
  kReady = 2,
  kSubscribed = 3,
  kEvents = 4,
  kHeartbeat = 5,
  kHeartbeatAck = 6,
  kLeave = 7,
  kSessionClosed = 8,
  kError = 9,
  kPluginMessage = 10,     // both ways: a message of a kind a plugin registered
  kSubscribe = 11,         // client -> node: add guilds to a live session
  kUnsubscribe = 12,       // client -> node: remove guilds from a live session
  kUnsubscribed = 13,      // node -> client: a guild left the session's stream
  kGuildUnavailable = 14,  // node -> client: a guild's events may be missed until re-SUBSCRIBED
  kResume = 15,            // client -> node: continue a session after a reconnect
  kResumed = 18,           // node -> client: RESUME accepted; replayed items follow
  kInvalidSession = 19,    // node -> client: RESUME refused; IDENTIFY again
  kReconnect = 20,         // node -> client: the node is draining; move the session elsewhere
  // publisher <-> broker
  kPublish = 16,
  kPublishAck = 17,
};

// Error and close-reason codes carried by ERROR, SESSION_CLOSED and SUBSCRIBED.
enum class Code : std::uint32_t {
  kOk = 0,
  kMalformed = 1,           // the frames could not be decoded as the type they claim
  kUnsupportedVersion = 2,  // header version is not kVersion
  kUnknownType = 3,         // message type is not one this endpoint accepts
  kTooLarge = 4,            // a frame or list exceeds a documented limit
  kAuthFailed = 5,          // IDENTIFY rejected by the token checker
  kNoRoute = 6,             // no live guild node owns the guild
  kUnknownSession = 7,      // session id is not live on this connection
  kSlowConsumer = 8,        // the connection's outbound queue was full
  kOverloaded = 9,          // a bounded resource stayed exhausted; retry later
  kShuttingDown = 10,       // the node is stopping
  kLimit = 11,              // a per-connection or per-node count limit was reached
  kHeartbeatTimeout = 12,   // reserved: version 1 closed silent connections with it
  kClosedByClient = 13,     // LEAVE was honoured
  kRejected = 14,           // a plugin rejected the request (reason in the text)
  kResumeGap = 15,          // RESUME asked for stream items no longer buffered
  kOwnerChanged = 16,       // the guild changed owner before its PUBLISH was acknowledged
  kForbidden = 17,          // the publisher's key may not publish to that guild
};

}  // namespace hearth::protocol
