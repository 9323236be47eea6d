// A node: the hub thread that owns the node's sockets (broker link, client
// listener) and its shards. The hub decodes only enough of each frame to pick
// the shard that owns it (the partitioner); shards do the work.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "broker/ring_handle.hpp"
#include "common/log_limiter.hpp"
#include "common/memory_ceiling.hpp"
#include "common/pipe_bytes.hpp"
#include "nodes/connection_tracker.hpp"
#include "nodes/node_config.hpp"
#include "nodes/node_stats.hpp"
#include "nodes/shard.hpp"
#include "nodes/subscribe_limiter.hpp"

namespace hearth {

class Node {
 public:
  // Throws std::invalid_argument for a config that cannot work.
  Node(zmq::context_t& ctx, NodeConfig config);
  ~Node();

  // Binds the client listener and connects to the broker; throws zmq::error_t.
  void bind();
  // Runs the hub until `stop` becomes true, then stops the shards. When
  // `drain` becomes true first, the node drains (docs/reliability.md): it
  // hands its guilds over, tells its sessions RECONNECT, and returns once
  // empty or after --drain-timeout-ms.
  void run(const std::atomic<bool>& stop, const std::atomic<bool>* drain = nullptr);

  const NodeStats& stats() const { return stats_; }
  const NodeConfig& config() const { return config_; }
  // The ring this node currently routes by (thread-safe).
  std::shared_ptr<const Ring> ring() const { return ring_.load(); }

 private:
  void on_broker(Frames& frames);
  // RING: only from the broker, valid (internal_limits.hpp) and newer than
  // the last one; anything else is refused and counted.
  void on_ring(Frames& frames, wire::HeaderReader& r);
  // Counts and (rate-limited) logs an internal message this node refuses.
  void refuse_internal(std::string_view source, const std::string& why);
  void on_client(Frames& frames);
  void on_shard_output(Frames& frames);
  void send_to_client(Frames& frames, std::size_t first, bool goodbye);
  void send_to_broker(Frames& frames, std::size_t first);
  void push_task(unsigned shard, TaskPtr task);
  void retry_carried();
  void retry_goodbyes();
  void flush_client_backlogs();
  void declare_stalled(const std::string& peer);
  // Bytes queued for one connection: libzmq's pipe and the backlog together.
  struct Outbound {
    std::shared_ptr<PipeBytes> bytes = std::make_shared<PipeBytes>();
    Clock::time_point above_soft_since{};  // epoch: at or below the soft limit
    bool closed = false;  // declared stalled; what it holds drains or goes with the peer
  };
  // True when `adding` more bytes would break the connection's output limits.
  bool output_limit_reached(const std::string& peer, Outbound& out, std::size_t adding);
  // Closes connections that stayed above the soft limit; forgets idle ones.
  void sweep_outbound();
  // Above --max-memory: answers IDENTIFY, RESUME and SUBSCRIBE with OVERLOADED.
  bool refused_for_memory(Frames& frames, const wire::HeaderReader& r);
  void connection_gone(const std::string& peer);
  // Queues a connection task for every shard holding sessions of `peer`.
  void tell_shards_of(const std::string& peer, Task::Kind kind);
  void tell_shards(const std::string& peer, const std::vector<unsigned>& shards, Task::Kind kind);
  // Routes a client message to the shard it concerns; answers HEARTBEAT.
  // `identify` tells an IDENTIFY (whose sender's address the shard needs).
  unsigned shard_for_client_message(Frames& frames, bool* answered, bool* identify);
  void detach_silent_connections(Clock::time_point now);
  // SIGTERM: every session is told SHUTTING_DOWN before the node exits.
  void shut_down_sessions();
  void register_with_broker();
  void begin_drain();
  // True once nothing is left to hand over or serve, and all of it was sent.
  bool drained() const;
  void note_ring(const RingUpdate& update);
  // Tells the broker this node has left for good (after a drain).
  void deregister();
  bool throttled() const;

  NodeConfig config_;
  zmq::context_t& ctx_;
  std::uint64_t incarnation_;
  std::shared_ptr<const TokenChecker> tokens_;
  IdentifyThrottle identify_throttle_;
  NodeStats stats_;
  RingHandle ring_;
  SubscribeLimiter limiter_;
  PluginHost plugins_;
  zmq::socket_t broker_;
  zmq::socket_t clients_;
  zmq::socket_t from_shards_;
  std::string hub_endpoint_;
  std::unique_ptr<NodeShared> shared_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::deque<TaskPtr>> carry_;  // tasks a full shard inbox refused
  std::size_t carried_ = 0;
  std::deque<Frames> to_broker_;  // backlog while the broker link is full
  // Messages a connection's full pipe refused, kept in order until it drains.
  struct ClientBacklog {
    std::deque<Frames> messages;
    std::size_t bytes = 0;
  };
  std::unordered_map<std::string, ClientBacklog> client_backlog_;
  std::unordered_set<std::string> stalled_;  // connections being closed for a full queue
  std::unordered_map<std::string, Outbound> outbound_;
  MemoryCeiling memory_;
  std::unordered_map<std::string, std::deque<Frames>> goodbyes_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> goodbye_deadline_;
  std::vector<std::vector<std::uint64_t>> partition_;
  ConnectionTracker tracker_;
  std::atomic<std::uint64_t> last_epoch_{0};
  bool draining_ = false;
  bool ring_shows_draining_ = false;  // the broker's ring has this node as draining
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::uint64_t ring_version_ = 0;  // of the last RING accepted
  LogLimiter warnings_;
};

}  // namespace hearth
