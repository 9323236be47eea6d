// Shard, session streams: stream items with their seq, detaching a session
// from a lost connection, RESUME and its replay, and closing at shutdown.
#include <spdlog/spdlog.h>

#include "nodes/shard.hpp"
#include "nodes/shard_detail.hpp"

namespace hearth {

using namespace shard_detail;

namespace {

// The header of a stream item that is its own message (not an EVENTS entry).
std::string control_header(std::uint64_t sid, const StreamRecord& item, std::uint64_t seq) {
  if (item.type == static_cast<std::uint32_t>(Type::kSubscribed)) {
    wire::HeaderWriter w(Type::kSubscribed, 9);
    w.u64(sid).u64(seq).u64(item.guild).u64(item.code).u64(item.epoch).u64(item.guild_seq);
    w.u64(item.kind_or_request).u64(item.refetch).str(item.bytes);
    return std::string(w.view());
  }
  if (item.type == static_cast<std::uint32_t>(Type::kUnsubscribed)) {
    wire::HeaderWriter w(Type::kUnsubscribed, 4);
    w.u64(sid).u64(seq).u64(item.guild).u64(item.kind_or_request);
    return std::string(w.view());
  }
  wire::HeaderWriter w(Type::kGuildUnavailable, 4);
  w.u64(sid).u64(seq).u64(item.guild).u64(item.code);
  return std::string(w.view());
}

}  // namespace

bool Shard::emit_control(Session& s, const StreamRecord& item) {
  auto* record = new StreamRecord(item);
  record->refs = 1;  // ours, released below; the buffer takes its own
  const std::uint64_t seq = ++s.seq;
  s.replay.push(record, seq, shared_.config.resume_buffer_events,
                shared_.config.resume_buffer_bytes);
  bool alive = true;
  if (s.connection) {
    send_stream_item(s, *record, seq);
  } else if (!resumable(s)) {
    close_unresumable(s);
    alive = false;
  }
  release_record(record);
  return alive;
}

void Shard::send_stream_item(Session& s, const StreamRecord& item, std::uint64_t seq) {
  Connection& conn = *s.connection;
  if (item.type == static_cast<std::uint32_t>(Type::kEvents)) {
    conn.batch.add_bytes(s.id, seq, item.guild, item.kind_or_request, item.epoch, item.guild_seq,
                         item.bytes, ++delivery_stamp_);
    if (conn.batch.size() >= shared_.config.max_batch ||
        conn.batch.bytes() >= shared_.config.max_batch_bytes) {
      flush(conn);
    } else if (conn.batch.size() == 1) {
      dirty_.insert(conn.id);
    }
    return;
  }
  // Queued events go first, so the client sees the stream in seq order.
  flush(conn);
  Frames f;
  f.reserve(3);
  f.push_back(frame_of(std::string_view("C", 1)));
  f.push_back(frame_of(conn.id));
  f.push_back(frame_of(control_header(s.id, item, seq)));
  send(f);
}

bool Shard::resumable(const Session& s) const {
  // A client may have seen everything up to the detach; once the buffer lost
  // the item after that, no RESUME can succeed.
  return s.replay.size() == 0 || s.replay.oldest_seq() <= s.detached_at_seq + 1;
}

void Shard::close_unresumable(Session& s) {
  ++shared_.stats.expired_sessions;
  close_session(s.id, Code::kResumeGap, "replay buffer overrun while detached", false, false);
}

void Shard::detach_connection(const std::string& peer) {
  auto it = connections_.find(peer);
  if (it == connections_.end()) return;
  Connection& conn = it->second;
  conn.batch.clear();  // the items stay in the sessions' replay buffers
  dirty_.erase(peer);
  const auto grace_ends = Clock::now() + shared_.config.resume_grace;
  if (draining_) {
    // A draining node cannot wait for a RESUME: it is about to go.
    const std::vector<std::uint64_t> sessions = conn.sessions;
    conn.batch.clear();
    dirty_.erase(peer);
    for (std::uint64_t sid : sessions) {  // the last one erases the connection
      ++shared_.stats.expired_sessions;
      close_session(sid, Code::kShuttingDown, "the node is draining", false, false);
    }
    if (connections_.erase(peer)) {
      report_attached(peer, 0);
      --shared_.stats.connections;
    }
    return;
  }
  for (std::uint64_t sid : conn.sessions) {
    Session* s = sessions_.find(sid);
    if (!s) continue;
    s->connection = nullptr;
    s->detached_at_seq = s->seq;
    s->grace_ends = grace_ends;
    detached_.emplace_back(grace_ends, sid);
    ++shared_.stats.detached;
  }
  report_attached(peer, 0);
  connections_.erase(it);
  --shared_.stats.connections;
}

void Shard::sweep_detached(Clock::time_point now) {
  // The grace period is the same for every session, so the deque is in
  // deadline order. A session resumed since then is attached and skipped.
  while (!detached_.empty() && detached_.front().first <= now) {
    const auto [deadline, sid] = detached_.front();
    detached_.pop_front();
    Session* s = sessions_.find(sid);
    if (!s || s->connection || s->grace_ends != deadline) continue;
    ++shared_.stats.expired_sessions;
    close_session(sid, Code::kUnknownSession, "resume grace expired", false, false);
  }
}

void Shard::invalid_session(const std::string& peer, std::uint64_t request, std::uint64_t sid,
                            Code code, const std::string& reason) {
  ++shared_.stats.invalid_sessions;
  wire::HeaderWriter w(Type::kInvalidSession, 4);
  w.u64(request).u64(sid).u64(static_cast<std::uint64_t>(code)).str(reason);
  send_header(kToClient, peer, w);
}

void Shard::on_resume(const std::string& peer, wire::HeaderReader& r) {
  const std::uint64_t request = r.u64("request_id");
  const std::uint64_t sid = r.u64("session_id");
  const std::string_view token = r.bin("resume_token", 64);
  const std::uint64_t last_seq = r.u64("last_seq");
  if (!r.ok()) return send_client_error(peer, r.error().code, r.error().text, r.peek_u64(0));
  Session* s = sessions_.find(sid);
  if (!s) {
    return invalid_session(peer, request, sid, Code::kUnknownSession,
                           "this node holds no session " + std::to_string(sid) +
                               ": closed, expired, or the node restarted; IDENTIFY again");
  }
  if (!resume_token_matches(s->resume_token, token)) {
    return invalid_session(peer, request, sid, Code::kAuthFailed,
                           "the resume token does not match this session");
  }
  if (last_seq > s->seq) {
    return invalid_session(peer, request, sid, Code::kMalformed,
                           "last_seq " + std::to_string(last_seq) +
                               " is beyond the session's last seq " + std::to_string(s->seq));
  }
  const bool covered =
      last_seq == s->seq || (s->replay.size() > 0 && s->replay.oldest_seq() <= last_seq + 1);
  if (!covered) {
    invalid_session(
        peer, request, sid, Code::kResumeGap,
        "items after seq " + std::to_string(last_seq) + " are no longer buffered; IDENTIFY again");
    // Nobody can resume it now. A client still attached elsewhere is told.
    const bool elsewhere = s->connection && s->connection->id != peer;
    ++shared_.stats.expired_sessions;
    close_session(sid, Code::kResumeGap, "the session was resumed with a gap", elsewhere, false);
    return;
  }
  Connection& conn = connection_for(peer);
  if (s->connection != &conn) {
    unlink_from_connection(*s);
    attach(*s, conn);
  } else {
    // Resumed on its own connection: what is queued goes before RESUMED,
    // and the client ignores it (it waits for RESUMED).
    flush(conn);
  }
  ++shared_.stats.resumed;
  wire::HeaderWriter w(Type::kResumed, 3);
  w.u64(request).u64(sid).u64(s->seq - last_seq);
  send_header(kToClient, peer, w);
  s->replay.for_each_after(last_seq, [&](const StreamRecord& item, std::uint64_t seq) {
    send_stream_item(*s, item, seq);
  });
}

void Shard::shutdown_sessions() {
  std::vector<std::string> peers;
  peers.reserve(connections_.size());
  for (const auto& [peer, conn] : connections_) peers.push_back(peer);
  for (const std::string& peer : peers) {
    close_connection(peer, Code::kShuttingDown, "the node is stopping", true, false);
  }
  std::vector<std::uint64_t> rest;
  sessions_.for_each([&](Session& s) { rest.push_back(s.id); });
  for (std::uint64_t sid : rest) {
    close_session(sid, Code::kShuttingDown, "the node is stopping", false, false);
  }
  shut_down_.store(true);
}

}  // namespace hearth
