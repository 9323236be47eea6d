// A guild actor: its sequence counter and its member sessions grouped by the
// session node that hosts them. Owned by one shard thread; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

namespace hearth {

class Guild {
 public:
  // Members of one session node, and their ids packed once for every event
  // until membership changes (Manifold: one frame per node, not per session).
  struct NodeGroup {
    std::vector<std::uint64_t> sessions;
    std::vector<std::uint64_t> users;  // parallel to sessions
    std::unordered_map<std::uint64_t, std::size_t> position;
    zmq::message_t packed;
    bool packed_valid = false;
  };

  // `epoch` names this run of the guild's sequence: a guild created again
  // (moved, its node restarted, evicted) gets a new one, so (epoch, seq)
  // never repeats (docs/protocol.md, "Epochs").
  // A guild handed over by its previous owner continues its epoch at `seq`.
  explicit Guild(std::uint64_t id, std::uint64_t epoch = 0, std::uint64_t seq = 0)
      : id_(id), epoch_(epoch), seq_(seq) {}

  std::uint64_t id() const { return id_; }
  std::uint64_t epoch() const { return epoch_; }
  std::uint64_t seq() const { return seq_; }
  std::uint64_t next_seq() { return ++seq_; }
  std::size_t member_count() const { return members_; }

  // False when the session was already a member.
  bool add(const std::string& node, std::uint64_t session, std::uint64_t user = 0);
  // The member's user id, or 0.
  std::uint64_t user_of(const std::string& node, std::uint64_t session) const;
  // False when it was not a member.
  bool remove(const std::string& node, std::uint64_t session);
  // Drops every member on a node that left (or restarted).
  void drop_node(const std::string& node);

  // Calls f(node, packed_ids_frame) for every node with members; the frame is
  // shared by reference (copy it with zmq::message_t::copy).
  template <class F>
  void for_each_node(F&& f) {
    for (auto& [node, group] : groups_) {
      if (!group.packed_valid) pack(group);
      f(node, group.packed);
    }
  }

  // Calls f(node, group) for every node with members.
  template <class F>
  void for_each_group(F&& f) const {
    for (const auto& [node, group] : groups_) f(node, group);
  }

  // Calls f(session, user) for every member.
  template <class F>
  void for_each_member(F&& f) const {
    for (const auto& [node, group] : groups_) {
      for (std::size_t i = 0; i < group.sessions.size(); ++i) f(group.sessions[i], group.users[i]);
    }
  }

  std::chrono::steady_clock::time_point last_active;
  std::vector<void*> plugin_slots;  // one per loaded plugin
  // Members that came by HANDOFF and whose plugins' subscribe hooks have not
  // run on this node yet: they run when the member's session re-announces
  // itself with its subscription data (guild-side plugin state does not
  // travel with a handoff).
  std::unordered_set<std::uint64_t> unannounced;

 private:
  static void pack(NodeGroup& group);

  std::uint64_t id_;
  std::uint64_t epoch_;
  std::uint64_t seq_ = 0;
  std::size_t members_ = 0;
  std::map<std::string, NodeGroup> groups_;
};

}  // namespace hearth
