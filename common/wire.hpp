// Encoding and validated decoding of Hearth message headers (MessagePack arrays).
//
// Every header is an array [version, type, fields...]. HeaderReader checks the
// version and each field's type as it is read and keeps the first error, so a
// handler reads all the fields it needs and checks ok() once.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol.hpp"

namespace hearth::wire {

using protocol::Code;
using protocol::Type;

// Limits that bound what one decoded header may allocate.
inline constexpr std::size_t kMaxHeaderBytes = 1 << 20;
inline constexpr std::size_t kMaxArrayItems = 100000;
inline constexpr std::size_t kMaxStringBytes = 4096;

struct DecodeError {
  Code code = Code::kOk;
  std::string text;
};

class HeaderReader {
 public:
  // Parses bytes; never throws. On failure ok() is false and error() says why.
  HeaderReader(const void* data, std::size_t size);

  bool ok() const { return error_.code == Code::kOk; }
  const DecodeError& error() const { return error_; }
  // The message type; kNoSuchType for a type wider than 32 bits.
  std::uint32_t type() const { return type_; }
  static constexpr std::uint32_t kNoSuchType = 0xffffffffu;
  // Field i (0 = the first after the type) if it is an unsigned integer, else
  // 0; reads nothing. For an error's `ref` when later fields are bad.
  std::uint64_t peek_u64(std::size_t i) const;
  // Fields after version and type.
  std::size_t field_count() const { return fields_; }
  bool has_more() const { return next_ < fields_; }

  // Each reads the next field; on a type error it records the error (naming
  // the field) and returns an empty value. Later reads after an error are no-ops.
  std::uint64_t u64(const char* field);
  std::string_view str(const char* field, std::size_t max_bytes = kMaxStringBytes);
  std::string_view bin(const char* field, std::size_t max_bytes = kMaxStringBytes);
  void u64_array(const char* field, std::size_t max_items, std::vector<std::uint64_t>& out);
  // Reads the next field, which must be an array, and appends its MessagePack
  // encoding to `out` (for passing on untouched).
  void raw_array(const char* field, std::size_t max_bytes, std::string& out);
  // Reads the next field as an array and returns its elements (or nullptr).
  const msgpack::object* array(const char* field, std::size_t max_items, std::size_t* count);

  // Reads a u64 from an arbitrary object, for nested arrays.
  std::uint64_t u64_of(const msgpack::object& o, const char* field);

  void fail(Code code, std::string text);

 private:
  const msgpack::object* next(const char* field);

  msgpack::object_handle handle_;
  const msgpack::object* items_ = nullptr;
  std::size_t fields_ = 0;
  std::size_t next_ = 0;
  std::uint32_t type_ = 0;
  DecodeError error_;
};

// Builds one header: HeaderWriter w(Type::kReady, 2); w.u64(..); w.u64(..);
// The field count must match what is written.
class HeaderWriter {
 public:
  HeaderWriter(std::uint32_t type, std::size_t field_count);
  HeaderWriter(Type type, std::size_t field_count)
      : HeaderWriter(static_cast<std::uint32_t>(type), field_count) {}

  HeaderWriter& u64(std::uint64_t v) {
    packer_.pack_uint64(v);
    return *this;
  }
  HeaderWriter& str(std::string_view s) {
    packer_.pack_str(static_cast<std::uint32_t>(s.size()));
    packer_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
    return *this;
  }
  HeaderWriter& bin(std::string_view s) {
    packer_.pack_bin(static_cast<std::uint32_t>(s.size()));
    packer_.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
    return *this;
  }
  HeaderWriter& array(std::size_t n) {
    packer_.pack_array(static_cast<std::uint32_t>(n));
    return *this;
  }
  template <class Range>
  HeaderWriter& u64_array(const Range& values) {
    packer_.pack_array(static_cast<std::uint32_t>(std::size(values)));
    for (auto v : values) packer_.pack_uint64(v);
    return *this;
  }

  const msgpack::sbuffer& buffer() const { return buffer_; }
  std::string_view view() const { return {buffer_.data(), buffer_.size()}; }

 private:
  msgpack::sbuffer buffer_;
  msgpack::packer<msgpack::sbuffer> packer_;
};

const char* code_name(Code code);
const char* type_name(std::uint32_t type);

}  // namespace hearth::wire
