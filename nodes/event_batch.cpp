#include "nodes/event_batch.hpp"

#include "common/wire.hpp"

namespace hearth {

void EventBatch::add(std::uint64_t session, std::uint64_t seq, std::uint64_t guild,
                     std::uint64_t kind, std::uint64_t guild_seq, const zmq::message_t& payload,
                     std::uint64_t delivery) {
  Entry e{session, seq, guild, kind, guild_seq, 0, 0, static_cast<std::uint32_t>(payload.size())};
  if (!entries_.empty() && delivery == last_delivery_) {
    const Entry& prev = entries_.back();
    e.large = prev.large;
    e.offset = prev.offset;
  } else if (payload.size() <= kInlineMax) {
    e.offset = static_cast<std::uint32_t>(block_.size());
    block_.append(static_cast<const char*>(payload.data()), payload.size());
  } else {
    large_.emplace_back().copy(const_cast<zmq::message_t&>(payload));
    e.large = static_cast<std::uint32_t>(large_.size());
  }
  last_delivery_ = delivery;
  entries_.push_back(e);
}

void EventBatch::encode_into(Frames& out) {
  wire::HeaderWriter w(protocol::Type::kEvents, 1);
  w.array(entries_.size());
  for (const Entry& e : entries_) {
    // Frame 1 is always the block (possibly empty); large payloads follow it.
    const std::uint64_t frame = e.large == 0 ? 1 : 1 + e.large;
    w.array(8).u64(e.session).u64(e.seq).u64(e.guild).u64(e.kind).u64(e.guild_seq);
    w.u64(frame).u64(e.offset).u64(e.length);
  }
  out.push_back(frame_of(w.view()));
  out.push_back(frame_of(block_));
  for (zmq::message_t& m : large_) out.push_back(std::move(m));
  clear();
}

void EventBatch::clear() {
  entries_.clear();
  block_.clear();
  large_.clear();
  last_delivery_ = 0;
}

}  // namespace hearth
