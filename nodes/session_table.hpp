// A shard's live sessions in a slot array: find by id is an index and a
// compare. Freed slots are reused with a new generation, so an id that names a
// closed session (a late event, a stale LEAVE) finds nothing.
// Owned by one shard thread. References returned stay valid until the next
// create() (the array may grow).
#pragma once

#include <cstdint>
#include <vector>

#include "nodes/session.hpp"
#include "nodes/session_id.hpp"

namespace hearth {

class SessionTable {
 public:
  SessionTable(std::uint16_t incarnation, unsigned shard)
      : incarnation_(incarnation), shard_(shard) {}

  // nullptr when the id is not a live session of this table.
  Session* find(std::uint64_t id) {
    const std::uint32_t slot = slot_of_session(id);
    if (slot >= slots_.size()) return nullptr;
    Slot& s = slots_[slot];
    return s.live && s.session.id == id ? &s.session : nullptr;
  }

  // A new session with a fresh id; nullptr when the table is full.
  Session* create() {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else if (slots_.size() < kMaxSlots) {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      return nullptr;
    }
    Slot& s = slots_[slot];
    s.live = true;
    s.session = Session{};
    s.session.id = make_session_id(incarnation_, ++s.generation, slot, shard_);
    ++size_;
    return &s.session;
  }

  void erase(std::uint64_t id) {
    Session* s = find(id);
    if (!s) return;
    const std::uint32_t slot = slot_of_session(id);
    slots_[slot].live = false;
    slots_[slot].session = Session{};  // frees its guild links now
    free_.push_back(slot);
    --size_;
  }

  template <class F>
  void for_each(F&& f) {
    for (Slot& s : slots_) {
      if (s.live) f(s.session);
    }
  }

  std::size_t size() const { return size_; }

 private:
  struct Slot {
    Session session;
    std::uint16_t generation = 0;
    bool live = false;
  };
  std::uint16_t incarnation_;
  unsigned shard_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

}  // namespace hearth
