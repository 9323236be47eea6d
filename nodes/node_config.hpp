// Everything a node is told at start. Defaults are the documented defaults of
// `hearth node --help`.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/curve_keys.hpp"
#include "nodes/auth.hpp"
#include "nodes/identify_throttle.hpp"
#include "nodes/plugin_host.hpp"

namespace hearth {

struct NodeConfig {
  std::string name = "node-1";
  std::string broker = "tcp://127.0.0.1:7401";
  bool guild_role = true;
  bool session_role = true;
  unsigned shards = 0;  // 0: one per core
  std::uint32_t vnodes = 512;
  std::string listen = "tcp://127.0.0.1:7500";  // clients (session role)

  std::chrono::milliseconds heartbeat{500};           // REGISTER to the broker
  std::chrono::milliseconds client_heartbeat{15000};  // advertised in READY
  std::chrono::milliseconds client_timeout{45000};    // silence before sessions detach
  // RESUME (docs/protocol.md): how long a detached session waits, and the
  // bounds of each session's replay buffer.
  std::chrono::milliseconds resume_grace{60000};
  std::uint32_t resume_buffer_events = 1024;
  std::size_t resume_buffer_bytes = 1 << 20;
  std::chrono::milliseconds subscribe_timeout{5000};
  // Planned moves: how long a new owner holds a moving guild's messages for
  // the old owner's HANDOFF before it starts the guild afresh (and its
  // sessions are told). Longer than the broker's --node-timeout-ms, so that an
  // old owner that hangs is expired before its guilds are given up on.
  std::chrono::milliseconds handoff_timeout{10000};
  std::size_t max_held = 65536;  // messages held per shard for moving guilds
  // Drain (SIGTERM): RECONNECT is spread over drain_window; the node exits
  // when empty or after drain_timeout.
  std::chrono::milliseconds drain_window{5000};
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds stats_interval{0};
  // Shortest time between two flushes of a shard's pending EVENTS; the first
  // event after a quiet spell still leaves at once.
  std::chrono::microseconds flush_interval{0};

  // Bounds.
  std::uint32_t subscribe_permits = 64;  // outstanding SUBSCRIBEs per guild node
  // A connection's outbound queue: the libzmq pipe (client_hwm messages), then
  // the hub's backlog (client_backlog messages). When both are full the
  // connection is closed with SLOW_CONSUMER.
  std::uint32_t client_hwm = 1000;
  std::uint32_t client_backlog = 1000;
  std::size_t client_backlog_bytes = 8 << 20;  // and at most this many bytes in the backlog
  // Everything queued for one connection in bytes (pipe and backlog), as
  // Redis's client-output-buffer-limit: past the hard limit, or above the soft
  // limit for longer than soft_time, the connection is closed (SLOW_CONSUMER).
  std::size_t client_output_hard = 32 << 20;
  std::size_t client_output_soft = 8 << 20;
  std::chrono::milliseconds client_output_soft_time{60000};
  // Resident memory above which IDENTIFY, RESUME and SUBSCRIBE get OVERLOADED; 0: none.
  std::uint64_t max_memory = 0;
  std::uint32_t max_batch = 256;  // events per EVENTS message
  // Payload bytes per EVENTS message (a single larger payload travels
  // alone), so that a queue counted in messages is also bounded in bytes.
  std::size_t max_batch_bytes = 64 << 10;
  std::uint32_t max_sessions_per_connection = 10000;
  std::uint32_t max_guilds_per_session = 1000;
  std::uint32_t max_members_per_guild = 1000000;
  std::uint64_t max_guilds = 1000000;
  std::size_t max_payload = 1 << 20;
  std::size_t shard_queue = 65536;  // tasks waiting per shard

  std::shared_ptr<const TokenChecker> tokens;  // null: development mode
  IdentifyLimits identify_limits;

  std::vector<PluginSpec> plugins;
  PluginLimits plugin_limits;

  // CURVE (docs/security.md). With `key` and `broker_public_key`, the broker
  // link is a CURVE client that accepts only that broker. With `key` and
  // `clients_curve`, the client endpoint is a CURVE server (any client key:
  // users authenticate by token); otherwise it speaks NULL.
  std::optional<CurveKeyPair> key;
  std::string broker_public_key;
  bool clients_curve = false;
};

}  // namespace hearth
