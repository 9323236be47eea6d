#include "common/wire.hpp"

#include <gtest/gtest.h>

namespace hearth::wire {
namespace {

HeaderReader read(std::string_view bytes) {
  return HeaderReader(bytes.data(), bytes.size());
}

template <class T>
std::string pack_value(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return std::string(b.data(), b.size());
}

TEST(Wire, RoundTripsEveryFieldKind) {
  HeaderWriter w(Type::kIdentify, 4);
  w.u64(7).u64(0xffffffffffffffffULL).str("token").u64_array(std::vector<std::uint64_t>{1, 2, 3});
  auto r = read(w.view());
  ASSERT_TRUE(r.ok()) << r.error().text;
  EXPECT_EQ(r.type(), static_cast<std::uint32_t>(Type::kIdentify));
  EXPECT_EQ(r.field_count(), 4u);
  EXPECT_EQ(r.u64("a"), 7u);
  EXPECT_EQ(r.u64("b"), 0xffffffffffffffffULL);
  EXPECT_EQ(r.str("c"), "token");
  std::vector<std::uint64_t> guilds;
  r.u64_array("guilds", 10, guilds);
  EXPECT_EQ(guilds, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.has_more());
}

TEST(Wire, BinaryFieldsKeepEveryByte) {
  const std::string bytes("\0\1\xff\x80", 4);
  HeaderWriter w(1u, 1);
  w.bin(bytes);
  auto r = read(w.view());
  EXPECT_EQ(r.bin("b"), bytes);
  EXPECT_TRUE(r.ok());
}

TEST(Wire, EmptyFrameIsMalformed) {
  auto r = read("");
  EXPECT_EQ(r.error().code, Code::kMalformed);
}

TEST(Wire, GarbageIsMalformed) {
  auto r = read("\xc1\xc1\xc1");  // 0xc1 is never used in MessagePack
  EXPECT_EQ(r.error().code, Code::kMalformed);
  EXPECT_NE(r.error().text.find("MessagePack"), std::string::npos);
}

TEST(Wire, TruncatedHeaderIsMalformed) {
  HeaderWriter w(Type::kIdentify, 4);
  w.u64(1).u64(2).str("a long enough token").u64_array(std::vector<std::uint64_t>{1, 2});
  std::string bytes(w.view());
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    auto r = read(std::string_view(bytes).substr(0, cut));
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
  }
}

TEST(Wire, TrailingBytesAreMalformed) {
  HeaderWriter w(Type::kHeartbeat, 1);
  w.u64(1);
  std::string bytes(w.view());
  bytes.push_back('\0');
  EXPECT_EQ(read(bytes).error().code, Code::kMalformed);
}

TEST(Wire, NonArrayIsMalformed) {
  auto r = read(pack_value(42));
  EXPECT_EQ(r.error().code, Code::kMalformed);
  EXPECT_NE(r.error().text.find("array"), std::string::npos);
}

TEST(Wire, ShortArrayIsMalformed) {
  auto r = read(pack_value(std::vector<int>{1}));
  EXPECT_EQ(r.error().code, Code::kMalformed);
}

TEST(Wire, WrongVersionNamesBothVersions) {
  auto r = read(pack_value(std::vector<int>{1, 5, 1}));  // version 1 is refused
  EXPECT_EQ(r.error().code, Code::kUnsupportedVersion);
  EXPECT_NE(r.error().text.find("version 2"), std::string::npos);
  EXPECT_NE(r.error().text.find("version 1"), std::string::npos);
}

TEST(Wire, VersionOfWrongTypeIsMalformed) {
  auto r = read(pack_value(std::make_tuple(std::string("1"), 5)));
  EXPECT_EQ(r.error().code, Code::kMalformed);
}

TEST(Wire, WrongFieldTypeNamesTheField) {
  auto r = read(pack_value(std::make_tuple(2, 1, std::string("not a number"))));
  ASSERT_TRUE(r.ok());
  r.u64("request_id");
  EXPECT_EQ(r.error().code, Code::kMalformed);
  EXPECT_NE(r.error().text.find("request_id"), std::string::npos);
}

TEST(Wire, NegativeIntegerIsNotUnsigned) {
  auto r = read(pack_value(std::make_tuple(2, 1, -5)));
  r.u64("user_id");
  EXPECT_EQ(r.error().code, Code::kMalformed);
}

TEST(Wire, MissingFieldIsMalformed) {
  auto r = read(pack_value(std::make_tuple(2, 1)));
  r.u64("request_id");
  EXPECT_EQ(r.error().code, Code::kMalformed);
  EXPECT_NE(r.error().text.find("missing field 'request_id'"), std::string::npos);
}

TEST(Wire, OversizedStringIsTooLarge) {
  auto r = read(pack_value(std::make_tuple(2, 1, std::string(kMaxStringBytes + 1, 'x'))));
  r.str("token");
  EXPECT_EQ(r.error().code, Code::kTooLarge);
}

TEST(Wire, OversizedArrayIsTooLarge) {
  auto r = read(pack_value(std::make_tuple(2, 1, std::vector<int>(11, 1))));
  std::vector<std::uint64_t> out;
  r.u64_array("guilds", 10, out);
  EXPECT_EQ(r.error().code, Code::kTooLarge);
}

TEST(Wire, OversizedFrameIsTooLarge) {
  std::string big(kMaxHeaderBytes + 1, '\0');
  EXPECT_EQ(read(big).error().code, Code::kTooLarge);
}

TEST(Wire, ArrayHeaderClaimingMoreItemsThanBytesIsRejected) {
  // array32 claiming 4 billion entries in a 5-byte frame
  const std::string bytes("\xdd\xff\xff\xff\xff", 5);
  EXPECT_FALSE(read(bytes).ok());
}

TEST(Wire, FirstErrorWins) {
  auto r = read(pack_value(std::make_tuple(2, 1, std::string("x"), std::string("y"))));
  r.u64("first");
  r.u64("second");
  EXPECT_NE(r.error().text.find("first"), std::string::npos);
}

TEST(Wire, EveryCodeHasAName) {
  for (std::uint32_t c = 0; c <= static_cast<std::uint32_t>(Code::kResumeGap); ++c) {
    EXPECT_STRNE(code_name(static_cast<Code>(c)), "UNKNOWN_CODE") << c;
  }
}

}  // namespace
}  // namespace hearth::wire
