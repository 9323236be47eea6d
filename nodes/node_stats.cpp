#include "nodes/node_stats.hpp"

#include <sstream>

namespace hearth {

std::string NodeStats::summary() const {
  std::ostringstream out;
  out << "connections=" << connections << " sessions=" << sessions << " guilds=" << guilds
      << " published=" << published << " fanout_frames=" << fanout_frames
      << " deliveries=" << deliveries << " client_messages=" << client_messages
      << " malformed=" << malformed << " auth_failures=" << auth_failures
      << " slow_consumers=" << slow_consumers << " dropped_slow=" << dropped_slow
      << " heartbeat_timeouts=" << heartbeat_timeouts << " stale=" << stale_deliveries
      << " unroutable=" << dropped_unroutable << " subscribe_retries=" << subscribe_retries
      << " permit_denied=" << permit_denied << " dropped_by_plugin=" << dropped_by_plugin
      << " refused_not_owner=" << refused_not_owner << " handoffs_sent=" << handoffs_sent
      << " handoffs_received=" << handoffs_received << " handoffs_fresh=" << handoffs_fresh
      << " handoff_refused=" << handoff_refused << " moves_confirmed=" << moves_confirmed
      << " moves_lost=" << moves_lost << " output_hard_limit=" << output_hard_limit
      << " output_soft_limit=" << output_soft_limit << " refused_memory=" << refused_memory
      << " refused_internal=" << refused_internal;
  return out.str();
}

}  // namespace hearth
