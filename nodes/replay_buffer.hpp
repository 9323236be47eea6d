// A session's latest stream items, kept so that RESUME can replay what a
// client missed (docs/protocol.md, "RESUME"). Bounded in items and in payload
// bytes; the oldest items are dropped first. Owned by one shard thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth {

// One event's bytes, copied once per shard and shared by every session of the
// shard that buffers it. The count is not atomic: only the owning shard
// thread touches it. The bytes are copied rather than kept as the received
// zmq::message_t because libzmq may carve small messages out of a shared
// receive buffer, and holding one would pin the whole buffer.
struct SharedPayload {
  std::string bytes;
  std::uint32_t refs = 0;
};

struct StreamItem {
  std::uint64_t seq = 0;
  std::uint64_t guild = 0;
  // EVENTS: the event kind; SUBSCRIBED and UNSUBSCRIBED: the request id;
  // GUILD_UNAVAILABLE: unused.
  std::uint64_t kind_or_request = 0;
  std::uint64_t epoch = 0;
  std::uint64_t guild_seq = 0;
  SharedPayload* payload = nullptr;  // events only
  std::uint32_t type = 0;            // protocol::Type of the item
  std::uint16_t code = 0;            // SUBSCRIBED and GUILD_UNAVAILABLE
  std::uint8_t refetch = 0;          // SUBSCRIBED
};

class ReplayBuffer {
 public:
  ReplayBuffer() = default;
  ~ReplayBuffer() { clear(); }
  ReplayBuffer(ReplayBuffer&& other) noexcept { *this = std::move(other); }
  ReplayBuffer& operator=(ReplayBuffer&& other) noexcept;
  ReplayBuffer(const ReplayBuffer&) = delete;
  ReplayBuffer& operator=(const ReplayBuffer&) = delete;

  // Appends an item (taking a reference to its payload), first dropping the
  // oldest items until both limits hold. An item larger than max_bytes on
  // its own is kept alone.
  void push(const StreamItem& item, std::size_t max_items, std::size_t max_bytes);

  // Seq of the oldest item held, or 0 when empty.
  std::uint64_t oldest_seq() const { return count_ == 0 ? 0 : at(0).seq; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return bytes_; }

  // Calls f(item) for every held item with seq > after, oldest first.
  template <class F>
  void for_each_after(std::uint64_t after, F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const StreamItem& item = at(i);
      if (item.seq > after) f(item);
    }
  }

  // Drops every item and its payload references; frees the storage.
  void clear();

 private:
  const StreamItem& at(std::size_t i) const { return items_[(head_ + i) % items_.size()]; }
  void drop_oldest();
  void grow(std::size_t max_items);

  std::vector<StreamItem> items_;  // a ring; empty until the first item
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

// Releases one reference; frees the payload at the last.
inline void release_payload(SharedPayload* p) {
  if (p && --p->refs == 0) delete p;
}

}  // namespace hearth
