// Counters a node keeps; written by its threads, read by anyone.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace hearth {

struct NodeStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter connections{0};
  Counter sessions{0};
  Counter guilds{0};
  Counter published{0};        // events sequenced by this node's guilds
  Counter fanout_frames{0};    // per-node frames sent by this node's guilds
  Counter deliveries{0};       // events queued to sessions
  Counter client_messages{0};  // EVENTS messages written to connections
  Counter malformed{0};        // bad frames answered with ERROR
  Counter auth_failures{0};
  Counter slow_consumers{0};  // connections closed for a full queue
  Counter dropped_slow{0};    // messages discarded with a slow connection's queue
  Counter heartbeat_timeouts{0};
  Counter stale_deliveries{0};  // events for a session that left or moved
  Counter dropped_unroutable{0};
  Counter subscribe_retries{0};
  Counter permit_denied{0};
  Counter dropped_by_plugin{0};  // publishes a plugin dropped
  Counter detached{0};           // sessions whose connection went away, waiting for RESUME
  Counter resumed{0};            // RESUMEs accepted
  Counter invalid_sessions{0};   // RESUMEs refused
  Counter expired_sessions{0};   // detached sessions closed: grace over or buffer overrun
  Counter refused_not_owner{0};  // publishes for a guild this node does not own (fencing)
  // Planned moves (docs/design.md, "Handoff").
  Counter handoffs_sent{0};      // guilds handed to their new owner
  Counter handoffs_received{0};  // guilds taken over with their sequence and members
  Counter handoffs_fresh{0};     // guilds a handoff did not bring: started in a new epoch
  Counter handoff_refused{0};    // publishes refused because a moving guild's hold was full
  Counter moves_confirmed{0};    // session links that followed a move with nothing missed
  Counter moves_lost{0};         // session links told GUILD_UNAVAILABLE after a move
  Counter reconnects_sent{0};    // RECONNECTs sent while draining
  Counter output_hard_limit{0};  // connections closed past --client-output-hard-bytes
  Counter output_soft_limit{0};  // ... above --client-output-soft-bytes for too long
  Counter refused_memory{0};     // IDENTIFY, RESUME, SUBSCRIBE refused above --max-memory
  Counter refused_internal{0};   // invalid internal messages, or from the wrong sender

  std::string summary() const;
};

}  // namespace hearth
