#include "nodes/event_batch.hpp"

#include "common/wire.hpp"

namespace hearth {

void EventBatch::add_bytes(std::uint64_t session, std::uint64_t seq, std::uint64_t guild,
                           std::uint64_t kind, std::uint64_t epoch, std::uint64_t guild_seq,
                           std::string_view payload, std::uint64_t delivery) {
  add_entry(Entry{session, seq, guild, kind, epoch, guild_seq, 0, 0, 0}, payload, nullptr,
            delivery);
}

void EventBatch::add_entry(Entry e, std::string_view bytes, const zmq::message_t* frame,
                           std::uint64_t delivery) {
  e.length = static_cast<std::uint32_t>(bytes.size());
  if (!entries_.empty() && delivery == last_delivery_) {
    const Entry& prev = entries_.back();
    e.large = prev.large;
    e.offset = prev.offset;
  } else if (bytes.size() <= kInlineMax) {
    e.offset = static_cast<std::uint32_t>(block_.size());
    block_.append(bytes);
    bytes_ += bytes.size();
  } else if (frame) {
    large_.emplace_back().copy(const_cast<zmq::message_t&>(*frame));
    e.large = static_cast<std::uint32_t>(large_.size());
    bytes_ += bytes.size();
  } else {
    large_.emplace_back(bytes.data(), bytes.size());
    e.large = static_cast<std::uint32_t>(large_.size());
    bytes_ += bytes.size();
  }
  if (e.large == 0) block_named_ = true;
  last_delivery_ = delivery;
  entries_.push_back(e);
}

void EventBatch::encode_into(Frames& out) {
  // The block is a frame only when some entry names it, so every frame of the
  // message is named (docs/protocol.md, EVENTS); large frames follow it.
  const std::uint64_t first_large = block_named_ ? 2 : 1;
  wire::HeaderWriter w(protocol::Type::kEvents, 1);
  w.array(entries_.size());
  for (const Entry& e : entries_) {
    const std::uint64_t frame = e.large == 0 ? 1 : first_large + e.large - 1;
    w.array(9).u64(e.session).u64(e.seq).u64(e.guild).u64(e.kind).u64(e.epoch).u64(e.guild_seq);
    w.u64(frame).u64(e.offset).u64(e.length);
  }
  out.push_back(frame_of(w.view()));
  if (block_named_) out.push_back(frame_of(block_));
  for (zmq::message_t& m : large_) out.push_back(std::move(m));
  clear();
}

void EventBatch::clear() {
  entries_.clear();
  block_.clear();
  large_.clear();
  last_delivery_ = 0;
  block_named_ = false;
  bytes_ = 0;
}

}  // namespace hearth
