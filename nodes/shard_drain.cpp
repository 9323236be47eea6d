// Shard, drain (docs/reliability.md, "Drain"): the node is leaving. Its
// sessions are told RECONNECT, spread over --drain-window-ms so that its
// clients do not all land on the other nodes at once, and are served until
// their clients LEAVE them; a session that loses its connection meanwhile
// closes at once, since it could only be resumed here.
#include <spdlog/spdlog.h>

#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

void Shard::start_drain() {
  if (draining_) return;
  draining_ = true;
  drain_started_ = Clock::now();
  std::vector<std::uint64_t> detached;
  sessions_.for_each([&](Session& s) {
    if (s.connection) {
      reconnect_queue_.push_back(s.id);
    } else {
      detached.push_back(s.id);
    }
  });
  for (std::uint64_t sid : detached) {
    ++shared_.stats.expired_sessions;
    close_session(sid, Code::kShuttingDown, "the node is draining", false, false);
  }
  send_reconnects(drain_started_);
}

void Shard::send_reconnects(Clock::time_point now) {
  if (reconnects_sent_ >= reconnect_queue_.size()) return;
  const auto window = shared_.config.drain_window;
  const auto elapsed = now - drain_started_;
  // The share of the window gone by, rounded up: the first slice leaves at once.
  std::size_t due = reconnect_queue_.size();
  if (window.count() > 0 && elapsed < window) {
    due =
        static_cast<std::size_t>((static_cast<double>(reconnect_queue_.size()) * elapsed.count()) /
                                     std::chrono::duration_cast<Clock::duration>(window).count() +
                                 1);
  }
  const auto deadline = drain_started_ + shared_.config.drain_timeout;
  const auto left_ms = std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
  for (; reconnects_sent_ < std::min(due, reconnect_queue_.size()); ++reconnects_sent_) {
    Session* s = sessions_.find(reconnect_queue_[reconnects_sent_]);
    if (!s || !s->connection) continue;
    // Whatever is batched for the session goes first: RECONNECT follows its stream.
    if (!s->connection->batch.empty()) flush(*s->connection);
    wire::HeaderWriter w(Type::kReconnect, 2);
    w.u64(s->id).u64(static_cast<std::uint64_t>(left_ms));
    send_header(kToClient, s->connection->id, w);
    ++shared_.stats.reconnects_sent;
  }
}

}  // namespace hearth
