// The broker: membership, the ring, and routing between publishers and nodes
// and between nodes. Single-threaded; run() owns both sockets.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "broker/key_lists.hpp"
#include "broker/membership.hpp"
#include "broker/ring.hpp"
#include "common/curve_keys.hpp"
#include "common/frames.hpp"
#include "common/log_limiter.hpp"
#include "common/memory_ceiling.hpp"
#include "common/pipe_bytes.hpp"
#include "common/wire.hpp"

namespace hearth {

class ZapHandler;

struct BrokerConfig {
  std::string frontend = "tcp://127.0.0.1:7400";  // publishers (ROUTER)
  std::string backend = "tcp://127.0.0.1:7401";   // nodes (ROUTER)
  std::string local_backend;                      // also bound when set (inproc, all-in-one)
  std::chrono::milliseconds node_timeout{3000};
  // The first ring waits this long after start for the nodes' REGISTERs: a
  // restarted broker then rebuilds the ring its nodes already route by (the
  // placement depends only on membership), so no guild moves.
  std::chrono::milliseconds settle{1000};
  HashMode mode = HashMode::kFast;
  std::unordered_map<std::uint64_t, std::string> pins;
  // Messages held for one node whose pipe is full. Past half of it the broker
  // stops reading publishers; past all of it, further messages to that node
  // are dropped and counted.
  std::size_t max_pending_per_node = 200000;
  // The same in bytes, counting what waits here and what libzmq's pipe to the
  // node holds (a message may carry a 1 MiB payload).
  std::size_t max_pending_bytes_per_node = 128 << 20;
  std::chrono::milliseconds stats_interval{0};  // 0: no periodic stats log
  std::size_t max_payload = 1 << 20;            // PUBLISH payloads beyond it get TOO_LARGE
  // Largest frame read from a publisher: up to it an oversized payload gets
  // TOO_LARGE; beyond it libzmq drops the connection (ZMQ_MAXMSGSIZE).
  std::size_t max_frame = 16 << 20;
  // Bytes one publisher connection may have waiting in libzmq's receive pipe:
  // its high-water mark is this divided by max_frame (at least 1).
  std::size_t frontend_buffer = 256 << 20;
  std::uint64_t max_memory = 0;  // RSS above which PUBLISH gets OVERLOADED; 0: none
  // CURVE (docs/security.md). The backend is a CURVE server admitting only
  // `node_keys` when they are set, the frontend one admitting only
  // `publishers` (each within its guilds) when they are set; either needs
  // `key`, the broker's own pair. Unset: that endpoint speaks NULL.
  std::optional<CurveKeyPair> key;
  std::optional<std::vector<NodeKey>> node_keys;
  std::optional<std::vector<PublisherKey>> publishers;
};

// libzmq's receive high-water mark (messages) for the publisher socket.
int frontend_rcvhwm(const BrokerConfig& config);

struct BrokerStats {
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> routed{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> no_route{0};
  std::atomic<std::uint64_t> dropped_full{0};
  std::atomic<std::uint64_t> ring_version{0};
  std::atomic<std::uint64_t> guild_nodes{0};
  std::atomic<std::uint64_t> nodes{0};
  std::atomic<std::uint64_t> acks_fenced{0};     // PUBLISH_ACKs turned into OWNER_CHANGED
  std::atomic<std::uint64_t> deregistered{0};    // nodes that left after a drain
  std::atomic<std::uint64_t> too_large{0};       // PUBLISHes refused for their payload size
  std::atomic<std::uint64_t> refused_memory{0};  // PUBLISHes refused above --max-memory
  std::atomic<std::uint64_t> forbidden{0};       // PUBLISHes outside the publisher's guilds
  // Internal messages refused: from a peer that is not a registered node, or
  // an invalid REGISTER (docs/security.md, "Internal messages").
  std::atomic<std::uint64_t> refused_unregistered{0};
  std::atomic<std::uint64_t> refused_registers{0};
};

class Broker {
 public:
  Broker(zmq::context_t& ctx, BrokerConfig config);
  ~Broker();

  // Binds (throws zmq::error_t with the endpoint's errno on failure).
  void bind();
  // Runs until `stop` becomes true. Call bind() first.
  void run(const std::atomic<bool>& stop);

  const BrokerStats& stats() const { return stats_; }

 private:
  void on_frontend(Frames& frames);
  void on_backend(Frames& frames, std::chrono::steady_clock::time_point received);
  // A node's message for a publisher; a PUBLISH_ACK passes the fence or
  // becomes ERROR(OWNER_CHANGED).
  void to_publisher(Frames& frames);
  // True when `node` was alive, as one process, in every ring from `since`
  // to the current one, and owned `guild` in the first: whatever it
  // sequenced then went out before it could hand the guild over.
  bool owned_throughout(std::uint64_t guild, std::string_view node, std::uint64_t since) const;
  void on_register(const std::string& from, wire::HeaderReader& reader);
  void on_deregister(const std::string& from, wire::HeaderReader& reader);
  // True when a message from backend peer `from` may be acted on: it is a
  // registered node, or (for its answers to publishers only) was one in a
  // recent ring. Otherwise it is counted and refused.
  bool accepts_from(std::string_view from, std::string_view destination);
  void reply_error(const zmq::message_t& publisher, protocol::Code code, const std::string& text,
                   std::uint64_t ref);
  enum class Forwarded { kSent, kNoRoute, kRefused };
  // Routes an event to the guild's owner as FORWARD_PUBLISH (the payload is
  // moved, not copied). A publisher id of "" means a plugin: no ack.
  Forwarded forward_publish(std::uint64_t guild, std::uint64_t kind, std::uint64_t ack_id,
                            std::string_view publisher, zmq::message_t& payload,
                            std::string* owner_name);
  // Sends (or queues) a message whose first frame is the node's routing id.
  bool send_to_node(const std::string& node, Frames& frames);
  void flush_pending();
  void broadcast_ring();
  void expire_nodes();
  void log_stats();
  bool frontend_paused() const;
  // Bytes queued for `node`, here and in libzmq's pipe to it.
  const std::shared_ptr<PipeBytes>& pipe_bytes(const std::string& node);
  void refuse_for_memory(const zmq::message_t& publisher, std::uint64_t ack_id);
  // Starts the ZAP handler and makes the secured endpoints CURVE servers.
  void secure_endpoints();
  // With publisher keys: true when the sender of `header` may publish to
  // `guild`; otherwise answers FORBIDDEN and returns false.
  bool may_publish(const zmq::message_t& publisher, const zmq::message_t& header,
                   std::uint64_t guild, std::uint64_t ack_id);

  zmq::context_t& ctx_;
  BrokerConfig config_;
  zmq::socket_t frontend_;
  zmq::socket_t backend_;
  Membership membership_;
  std::shared_ptr<const Ring> ring_;
  // The latest rings, newest last, to check that a guild kept its owner
  // from the ring an event was sequenced under until its ack passes.
  struct RecentRing {
    std::shared_ptr<const Ring> ring;
    std::map<std::string, std::uint64_t> alive;  // every node (any role) -> incarnation
  };
  std::deque<RecentRing> recent_rings_;
  std::uint64_t ring_version_ = 0;
  bool settling_ = true;
  std::chrono::steady_clock::time_point settle_until_{};
  std::vector<NodeView> last_nodes_;  // of ring_: sent as the next RING's previous ring
  std::unordered_map<std::string, std::deque<Frames>> pending_;
  std::size_t pending_max_ = 0;  // the largest per-node backlog right now
  std::unordered_map<std::string, std::shared_ptr<PipeBytes>> node_bytes_;
  MemoryCeiling memory_;
  BrokerStats stats_;
  std::unique_ptr<ZapHandler> zap_;
  std::unordered_map<std::string, GuildSet> publisher_guilds_;  // by ZAP User-Id (the name)
  LogLimiter warnings_{"broker"};
};

}  // namespace hearth
