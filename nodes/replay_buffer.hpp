// A session's latest stream items, kept so that RESUME can replay what a
// client missed (docs/protocol.md, "RESUME"). Bounded in items and in payload
// bytes; the oldest items are dropped first. Owned by one shard thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth {

// One stream item's content, shared by every session of a shard that has it
// (an event reaches many sessions; a control item one), so a buffered item
// costs a session one pointer. The count is not atomic: only the owning shard
// thread touches it. Event bytes are copied rather than kept as the received
// zmq::message_t because libzmq may carve small messages out of a shared
// receive buffer, and holding one would pin the whole buffer.
struct StreamRecord {
  std::string bytes;  // EVENTS: the payload
  std::uint64_t guild = 0;
  // EVENTS: the event kind; SUBSCRIBED and UNSUBSCRIBED: the request id.
  std::uint64_t kind_or_request = 0;
  std::uint64_t epoch = 0;
  std::uint64_t guild_seq = 0;
  std::uint32_t refs = 1;  // the creator's reference; release it when done
  std::uint32_t type = 0;  // protocol::Type of the item
  std::uint16_t code = 0;  // SUBSCRIBED and GUILD_UNAVAILABLE
  std::uint8_t refetch = 0;
};

// Releases one reference; frees the record at the last.
inline void release_record(StreamRecord* r) {
  if (r && --r->refs == 0) delete r;
}

class ReplayBuffer {
 public:
  ReplayBuffer() = default;
  ~ReplayBuffer() { clear(); }
  ReplayBuffer(ReplayBuffer&& other) noexcept { *this = std::move(other); }
  ReplayBuffer& operator=(ReplayBuffer&& other) noexcept;
  ReplayBuffer(const ReplayBuffer&) = delete;
  ReplayBuffer& operator=(const ReplayBuffer&) = delete;

  // Appends the item with `seq` (one more than the last pushed), taking a
  // reference, after dropping the oldest items until both limits hold. An
  // item larger than max_bytes on its own is kept alone.
  // Inline: it runs once per delivery.
  void push(StreamRecord* record, std::uint64_t seq, std::size_t max_items, std::size_t max_bytes) {
    if (max_items == 0) return;
    const std::size_t size = record->bytes.size();
    while (count_ > 0 && (count_ >= max_items || bytes_ + size > max_bytes)) drop_oldest();
    if (count_ == items_.size()) grow();
    if (count_ == 0) first_seq_ = seq;
    items_[(head_ + count_) & (items_.size() - 1)] = record;
    ++count_;
    bytes_ += size;
    ++record->refs;
  }

  // Seq of the oldest item held, or 0 when empty.
  std::uint64_t oldest_seq() const { return count_ == 0 ? 0 : first_seq_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return bytes_; }

  // Calls f(record, seq) for every held item with seq > after, oldest first.
  template <class F>
  void for_each_after(std::uint64_t after, F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const std::uint64_t seq = first_seq_ + i;
      if (seq > after) f(*items_[(head_ + i) & (items_.size() - 1)], seq);
    }
  }

  // Drops every item and its references; frees the storage.
  void clear();

 private:
  void drop_oldest() {
    StreamRecord*& oldest = items_[head_];
    bytes_ -= oldest->bytes.size();
    release_record(oldest);
    oldest = nullptr;
    head_ = (head_ + 1) & (items_.size() - 1);
    --count_;
    ++first_seq_;
  }
  void grow();

  // A ring whose size is a power of two (the index is a mask, not a
  // division); empty until the first item. The item limit is enforced by
  // count, so a limit that is not a power of two costs up to twice its
  // pointers.
  std::vector<StreamRecord*> items_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t first_seq_ = 0;
};

}  // namespace hearth
