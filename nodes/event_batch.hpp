// The events waiting for one client connection, and their encoding as one
// EVENTS message (docs/protocol.md): a header listing every event, one frame
// holding the small payloads back to back (only when an entry names it), then
// one frame per large payload.
// Packing small payloads into one shared frame means a message
// of many events costs the client two frame receives, not one per event;
// payloads over kInlineMax keep a frame of their own, shared by reference.
// Sessions of the connection that receive the same event share its bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/frames.hpp"

namespace hearth {

class EventBatch {
 public:
  // libzmq copies frames under 8 KiB into its send buffer anyway; above that
  // it sends them in place, so they are kept whole.
  static constexpr std::size_t kInlineMax = 4096;

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // Payload bytes the encoded message will carry (shared bytes count once).
  std::size_t bytes() const { return bytes_; }

  // `delivery` identifies the fan-out this event came from: consecutive adds
  // with the same delivery reuse the payload bytes already in the batch.
  // Inline fast path: within one fan-out, every session after the first on
  // a connection only points at bytes already in the batch.
  void add(std::uint64_t session, std::uint64_t seq, std::uint64_t guild, std::uint64_t kind,
           std::uint64_t epoch, std::uint64_t guild_seq, const zmq::message_t& payload,
           std::uint64_t delivery) {
    if (!entries_.empty() && delivery == last_delivery_) {
      const Entry& prev = entries_.back();
      entries_.push_back(
          Entry{session, seq, guild, kind, epoch, guild_seq, prev.large, prev.offset, prev.length});
      return;
    }
    add_entry(Entry{session, seq, guild, kind, epoch, guild_seq, 0, 0, 0}, view_of(payload),
              &payload, delivery);
  }
  // The same from bytes (a replay): large payloads are copied into a frame.
  void add_bytes(std::uint64_t session, std::uint64_t seq, std::uint64_t guild, std::uint64_t kind,
                 std::uint64_t epoch, std::uint64_t guild_seq, std::string_view payload,
                 std::uint64_t delivery);

  // Appends the header frame and payload frames to `out`, then clears.
  void encode_into(Frames& out);
  void clear();

 private:
  struct Entry {
    std::uint64_t session, seq, guild, kind, epoch, guild_seq;
    std::uint32_t large;  // 0: bytes in block_; n: large_[n - 1]
    std::uint32_t offset, length;
  };
  // `frame` is the payload as a frame to share, or nullptr to copy `bytes`.
  void add_entry(Entry e, std::string_view bytes, const zmq::message_t* frame,
                 std::uint64_t delivery);

  std::vector<Entry> entries_;
  std::string block_;
  Frames large_;
  std::uint64_t last_delivery_ = 0;
  bool block_named_ = false;
  std::size_t bytes_ = 0;  // some entry's payload lives in block_ (even an empty one)
};

}  // namespace hearth
