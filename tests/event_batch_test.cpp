#include "nodes/event_batch.hpp"

#include <gtest/gtest.h>

#include "common/wire.hpp"

namespace hearth {
namespace {

struct Decoded {
  std::uint64_t session, seq, guild, kind, epoch, guild_seq;
  std::string payload;
  std::uint64_t frame;
};

std::vector<Decoded> decode(const Frames& frames) {
  wire::HeaderReader r(frames[0].data(), frames[0].size());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.type(), static_cast<std::uint32_t>(protocol::Type::kEvents));
  std::size_t n = 0;
  const msgpack::object* items = r.array("events", 1000, &n);
  std::vector<Decoded> out;
  for (std::size_t i = 0; i < n; ++i) {
    const msgpack::object* f = items[i].via.array.ptr;
    // [session_id, seq, guild_id, kind, epoch, guild_seq, frame, offset, length]
    EXPECT_EQ(items[i].via.array.size, 9u);
    const auto frame = f[6].via.u64, offset = f[7].via.u64, length = f[8].via.u64;
    EXPECT_GE(frame, 1u);
    EXPECT_LE(offset + length, frames.at(frame).size());
    out.push_back({f[0].via.u64, f[1].via.u64, f[2].via.u64, f[3].via.u64, f[4].via.u64,
                   f[5].via.u64, std::string(view_of(frames.at(frame)).substr(offset, length)),
                   frame});
  }
  return out;
}

TEST(EventBatch, PacksSmallPayloadsIntoOneFrameInOrder) {
  EventBatch b;
  zmq::message_t p1(std::string_view("first")), p2(std::string_view("second-payload"));
  b.add(10, 1, 100, 7, 1000, 55, p1, 1);
  b.add(10, 2, 200, 7, 2000, 9, p2, 2);
  Frames out;
  b.encode_into(out);
  ASSERT_EQ(out.size(), 2u);  // header + one block
  auto events = decode(out);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].payload, "first");
  EXPECT_EQ(events[0].epoch, 1000u);
  EXPECT_EQ(events[0].guild_seq, 55u);
  EXPECT_EQ(events[1].epoch, 2000u);
  EXPECT_EQ(events[1].payload, "second-payload");
  EXPECT_EQ(events[1].seq, 2u);
  EXPECT_TRUE(b.empty());
}

TEST(EventBatch, SessionsOfOneConnectionShareAnEventsBytes) {
  EventBatch b;
  zmq::message_t p(std::string(100, 'x'));
  for (std::uint64_t s = 1; s <= 30; ++s) b.add(s, 1, 5, 1, 3, 1, p, 42);
  Frames out;
  b.encode_into(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].size(), 100u) << "30 sessions, one copy of the bytes";
  for (const auto& e : decode(out)) EXPECT_EQ(e.payload, std::string(100, 'x'));
}

TEST(EventBatch, LargePayloadsKeepTheirOwnFrameByReference) {
  EventBatch b;
  zmq::message_t small(std::string_view("s"));
  zmq::message_t big(std::string(EventBatch::kInlineMax + 1, 'B'));
  const void* big_data = big.data();
  b.add(1, 1, 5, 1, 3, 1, small, 1);
  b.add(1, 2, 5, 1, 3, 2, big, 2);
  b.add(2, 1, 5, 1, 3, 2, big, 2);
  Frames out;
  b.encode_into(out);
  ASSERT_EQ(out.size(), 3u);  // header, block, the big payload
  EXPECT_EQ(out[2].data(), big_data) << "a large payload is shared, not copied";
  auto events = decode(out);
  EXPECT_EQ(events[0].payload, "s");
  EXPECT_EQ(events[1].payload.size(), EventBatch::kInlineMax + 1);
  EXPECT_EQ(events[1].frame, 2u);
  EXPECT_EQ(events[2].frame, 2u);
}

TEST(EventBatch, EmptyPayloadsNeedNoFrame) {
  EventBatch b;
  zmq::message_t empty;
  b.add(1, 1, 5, 1, 3, 1, empty, 1);
  Frames out;
  b.encode_into(out);
  auto events = decode(out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "");
}

}  // namespace
}  // namespace hearth
