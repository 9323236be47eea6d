// A shard: one thread owning a disjoint set of guild and session actors, so
// actors need no locks. The hub feeds it Tasks; it writes frames back to the
// hub over an inproc PUSH socket (see Shard::Route for their first frame).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <zmq.hpp>

#include "broker/ring.hpp"
#include "broker/ring_handle.hpp"
#include "common/backoff.hpp"
#include "common/bounded_queue.hpp"
#include "common/wire.hpp"
#include "nodes/guild.hpp"
#include "nodes/node_config.hpp"
#include "nodes/node_stats.hpp"
#include "nodes/plugin_host.hpp"
#include "nodes/replay_buffer.hpp"
#include "nodes/resume_token.hpp"
#include "nodes/session.hpp"
#include "nodes/session_table.hpp"
#include "nodes/subscribe_limiter.hpp"
#include "nodes/task.hpp"

namespace hearth {

// What the shards of one node share. Outlives every shard.
struct NodeShared {
  const NodeConfig& config;
  zmq::context_t& zmq;
  std::string hub_endpoint;  // inproc PULL the hub reads
  RingHandle& ring;
  NodeStats& stats;
  SubscribeLimiter& limiter;
  const TokenChecker& tokens;
  IdentifyThrottle& identify_throttle;
  PluginHost& plugins;
  std::uint64_t incarnation;
  unsigned shards;
  std::atomic<std::uint64_t>& last_epoch;  // see Shard::next_epoch
};

class Shard final : public PluginShardServices {
 public:
  // First frame of every message a shard sends to the hub.
  enum Route : char {
    kToBroker = 'B',  // then [destination, header, ...] for the broker DEALER
    kToClient = 'C',  // then [routing id, header, ...] for the client ROUTER
    kGoodbye = 'G',   // like kToClient, but retried until delivered (closing a stalled peer)
    kAttached = 'A',  // then [routing id, u32 shard, u32 sessions]: sessions attached to it here
  };

  Shard(unsigned index, NodeShared& shared);
  ~Shard();

  void start();
  // True once a kShutdown task has been handled (every session told).
  bool shut_down() const { return shut_down_.load(); }
  // Asks the thread to finish its current cycle and exit; join() waits.
  void stop() { stopping_.store(true); }
  void join();
  // After join(): hands every remaining plugin slot to its free hook, so
  // plugins can release memory at shutdown. Main thread only.
  void release_plugin_slots();

  BoundedQueue<TaskPtr>& inbox() { return inbox_; }

  // PluginShardServices: called by plugin hooks running on this shard.
  bool plugin_publish(std::uint64_t guild, std::uint64_t kind, std::string_view payload) override;
  bool plugin_send_to_session(std::uint64_t session, std::uint64_t kind,
                              std::string_view payload) override;
  void** plugin_guild_slot(std::uint64_t guild, std::size_t plugin) override;
  void** plugin_session_slot(std::uint64_t session, std::size_t plugin) override;
  std::uint64_t plugin_set_timer(std::size_t plugin, std::uint64_t delay_ms,
                                 std::uint64_t user_data) override;
  bool plugin_send_to_member(const std::string& node, std::uint64_t session, std::uint64_t kind,
                             std::string_view payload) override;
  bool plugin_set_subscription_data(std::uint64_t session, std::size_t plugin,
                                    std::string_view data) override;
  std::size_t plugin_guild_members(std::uint64_t guild, std::uint64_t* sessions,
                                   std::uint64_t* users, std::size_t capacity) override;

 private:
  void run();
  void handle(TaskPtr& task);

  // Client side.
  void on_client(Task& task);
  void on_identify(const std::string& peer, const std::string& address, wire::HeaderReader& r);
  // A failed IDENTIFY: counted against the connection and the address; the
  // connection is closed at its limit (identify_throttle.hpp).
  void identify_failed(const std::string& peer, const std::string& address, protocol::Code code,
                       const std::string& text, std::uint64_t request);
  void on_leave(const std::string& peer, wire::HeaderReader& r);
  void on_subscribe_request(const std::string& peer, wire::HeaderReader& r);
  // SUBSCRIBE and UNSUBSCRIBE: [request_id, session_id, guilds]. The session
  // if live on this connection (guilds sorted, distinct); otherwise answers
  // the error and returns nullptr.
  Session* read_guild_request(const std::string& peer, wire::HeaderReader& r,
                              std::uint64_t* request, std::vector<std::uint64_t>& guilds);
  // Adds links for `guilds` (asked by `request`) and subscribes each.
  void follow(Session& s, const std::vector<std::uint64_t>& guilds, std::uint64_t request);
  // SUBSCRIBED with code REJECTED for a guild the session's token does not grant.
  void refuse_guild(Session& s, std::uint64_t guild, std::uint64_t request);
  void on_unsubscribe_request(const std::string& peer, wire::HeaderReader& r);
  void on_resume(const std::string& peer, wire::HeaderReader& r);
  void invalid_session(const std::string& peer, std::uint64_t request, std::uint64_t sid,
                       protocol::Code code, const std::string& reason);
  // The connection object for `peer` on this shard, created when absent.
  Connection& connection_for(const std::string& peer);
  void attach(Session& s, Connection& conn);
  // Takes the session off its connection (erasing a connection left empty).
  void unlink_from_connection(Session& s);
  // Tells the hub how many sessions this shard has attached to the connection.
  void report_attached(const std::string& peer, std::size_t count);
  void detach_connection(const std::string& peer);
  void sweep_detached(Clock::time_point now);
  void shutdown_sessions();
  // Drain (shard_drain.cpp).
  void start_drain();
  void send_reconnects(Clock::time_point now);
  // Appends a stream item (docs/protocol.md, "Sessions and their stream") to
  // the session: stamps its seq, keeps it for RESUME, and sends it when the
  // session is attached. A detached session whose buffer no longer covers
  // what its client may have missed is closed. False when it was closed.
  bool emit_control(Session& s, const StreamRecord& item);
  void send_stream_item(Session& s, const StreamRecord& item, std::uint64_t seq);
  // True when the detached session can still be resumed.
  bool resumable(const Session& s) const;
  void close_unresumable(Session& s);
  std::uint64_t next_epoch();
  // Counts a new guild against the node's --max-guilds; false at the limit.
  bool reserve_guild();
  // The session if it is live on this connection; otherwise answers
  // UNKNOWN_SESSION (with `ref`) and returns nullptr.
  Session* session_of(const std::string& peer, std::uint64_t sid, std::uint64_t ref);
  void on_plugin_message(const std::string& peer, wire::HeaderReader& r, Task& task);
  using GuildMap = std::unordered_map<std::uint64_t, Guild>;
  GuildMap::iterator start_guild(std::uint64_t id);
  // Frees the guild's plugin slots, then erases it.
  GuildMap::iterator erase_guild(GuildMap::iterator it);
  void publisher_error(const Task& task, protocol::Code code, const std::string& text);
  void send_client_error(const std::string& peer, protocol::Code code, const std::string& text,
                         std::uint64_t ref);
  void close_session(std::uint64_t session, protocol::Code code, const std::string& reason,
                     bool tell_client, bool goodbye);
  void close_connection(const std::string& peer, protocol::Code code, const std::string& reason,
                        bool tell_client, bool goodbye);
  void on_deliver(Task& task);
  void on_subscribe_reply(const std::string& from, wire::HeaderReader& r);
  void try_subscribe(Session& s, std::uint64_t guild, GuildLink& link);
  // SUBSCRIBE [guild, session, user, subscription data] to the guild's owner.
  void send_subscribe(const Session& s, std::uint64_t guild, const std::string& owner);
  void schedule_retry(Session& s, std::uint64_t guild, GuildLink& link);
  void release_permit(GuildLink& link);
  // Re-subscribes links whose owner changed (every link when `everything`),
  // telling each session which guilds it may have missed.
  void relink_after_ring_change(bool everything);
  void flush(Connection& conn);
  void flush_dirty();

  // Guild side.
  void on_publish(Task& task);
  void on_subscribe(const std::string& from, wire::HeaderReader& r);
  void on_unsubscribe(const std::string& from, wire::HeaderReader& r);
  void apply_ring_to_guilds(const RingUpdate& update);
  void sweep_guilds(Clock::time_point now);

  void on_ring(Task& task);

  // Planned moves (shard_handoff.cpp, docs/design.md "Handoff"). Guild side:
  // a new owner holds a moving guild's messages until the old owner's
  // HANDOFF (or its HANDOFF_END without the guild) arrives.
  // True when `task` was held (it is moved from).
  bool hold_for_handoff(std::uint64_t guild, TaskPtr& task);
  // After a ring change: which nodes may still hand guilds here.
  void track_handing_nodes(const RingUpdate& update);
  // Sends every guild this shard no longer owns to its new owner.
  void export_moved_guilds();
  void on_handoff(const std::string& from, Task& task);
  void on_handoff_end(const std::string& from, wire::HeaderReader& r);
  void on_handoff_check(const std::string& from, wire::HeaderReader& r);
  // Releases held guilds for which `done` is true, starting each afresh
  // unless a HANDOFF installed it, then runs their messages in order.
  template <class Pred>
  void release_held(Pred done);
  void expire_held(Clock::time_point now);
  // Session side: links following a guild to its new owner confirm there
  // that the epoch continues (HANDOFF_CHECK).
  void follow_move(Session& s, std::uint64_t guild, GuildLink& link, const std::string& to);
  void on_handoff_check_reply(const std::string& from, wire::HeaderReader& r);
  void send_handoff_checks(Clock::time_point now);
  // The link's owner lost the guild's state: tell the session, subscribe again.
  bool link_lost(Session& s, std::uint64_t guild, GuildLink& link, Clock::time_point now);
  void run_timers(Clock::time_point now);
  void send(Frames& frames);
  // [route, destination, header]: the shape of every control message.
  void send_header(Route route, std::string_view destination, const wire::HeaderWriter& header);
  void unsubscribe_at(const std::string& owner, std::uint64_t guild, std::uint64_t session);
  // A small number per node name, so the delivery loop compares integers.
  std::uint32_t node_id(const std::string& name);

  const unsigned index_;
  NodeShared& shared_;
  BoundedQueue<TaskPtr> inbox_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  zmq::socket_t out_;  // created and used on the shard thread only
  // The ring of the last ring task this shard handled (not the hub's newest:
  // tasks queued before a ring change are judged by the ring they were sent
  // under), and the few before it.
  std::shared_ptr<const Ring> ring_;
  std::deque<std::shared_ptr<const Ring>> ring_history_;  // newest last, ring_ included
  JitteredBackoff backoff_;

  std::unordered_map<std::string, Connection> connections_;
  SessionTable sessions_;
  std::uint64_t delivery_stamp_ = 0;       // tells apart delivery tasks sharing a connection batch
  std::unordered_set<std::string> dirty_;  // connections with a non-empty batch
  std::deque<std::pair<Clock::time_point, std::uint64_t>> detached_;  // by grace end
  ResumeTokenSource tokens_;
  bool self_missing_ = false;  // the last ring left this node out: its memberships are gone
  std::atomic<bool> shut_down_{false};
  std::multimap<Clock::time_point, std::pair<std::uint64_t, std::uint64_t>> timers_;

  std::unordered_map<std::uint64_t, Guild> guilds_;
  std::unordered_map<std::string, std::uint64_t> live_nodes_;  // name -> incarnation
  std::unordered_map<std::string, std::uint32_t> node_ids_;

  // Handoff, guild side. A node that may still hand guilds to this one:
  // alive as the same process since it owned them.
  struct HandingNode {
    std::uint64_t incarnation = 0;
    std::uint64_t done_version = 0;  // its HANDOFF_END came from every shard for this ring
    std::map<std::uint64_t, std::vector<bool>> ends;  // ring version -> shards heard from
  };
  std::unordered_map<std::string, HandingNode> handing_;
  struct HeldGuild {
    std::string from;
    std::uint64_t ring_version = 0;
    Clock::time_point deadline{};
    std::deque<TaskPtr> tasks;
  };
  std::unordered_map<std::uint64_t, HeldGuild> held_;
  std::size_t held_tasks_ = 0;
  // Handoff, session side: per guild, the sessions of this shard that follow it
  // to `to` and wait for its HANDOFF_CHECK_REPLY.
  struct Move {
    std::string to;
    std::vector<std::uint64_t> sessions;
    Clock::time_point due{};
    unsigned attempts = 0;
  };
  std::unordered_map<std::uint64_t, Move> moves_;

  // Drain: sessions to tell RECONNECT, in order, and how many were told.
  bool draining_ = false;
  Clock::time_point drain_started_{};
  std::vector<std::uint64_t> reconnect_queue_;
  std::size_t reconnects_sent_ = 0;

  struct PluginTimer {
    std::size_t plugin;
    std::uint64_t id, user_data;
  };
  std::multimap<Clock::time_point, PluginTimer> plugin_timers_;
  std::uint64_t next_timer_id_ = 1;
  Clock::time_point next_sweep_{};
};

}  // namespace hearth
