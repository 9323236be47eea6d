#include "common/wire.hpp"

#include <string>

namespace hearth::wire {
namespace {

msgpack::unpack_limit decode_limits() {
  return msgpack::unpack_limit(kMaxArrayItems, 1024, kMaxHeaderBytes, kMaxHeaderBytes, 1024, 8);
}

bool is_uint(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER;
}

}  // namespace

HeaderReader::HeaderReader(const void* data, std::size_t size) {
  if (size == 0) {
    fail(Code::kMalformed, "empty header frame");
    return;
  }
  if (size > kMaxHeaderBytes) {
    fail(Code::kTooLarge, "header frame of " + std::to_string(size) + " bytes exceeds " +
                              std::to_string(kMaxHeaderBytes));
    return;
  }
  try {
    std::size_t offset = 0;
    handle_ = msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr,
                              decode_limits());
    if (offset != size) {
      fail(Code::kMalformed, "trailing bytes after the header array");
      return;
    }
  } catch (const msgpack::size_overflow& e) {
    fail(Code::kTooLarge, std::string("header exceeds a decode limit: ") + e.what());
    return;
  } catch (const std::exception& e) {
    fail(Code::kMalformed, std::string("header is not valid MessagePack: ") + e.what());
    return;
  }
  const msgpack::object& root = handle_.get();
  if (root.type != msgpack::type::ARRAY) {
    fail(Code::kMalformed, "header is not a MessagePack array");
    return;
  }
  if (root.via.array.size < 2) {
    fail(Code::kMalformed, "header array needs at least [version, type]");
    return;
  }
  items_ = root.via.array.ptr;
  if (!is_uint(items_[0])) {
    fail(Code::kMalformed, "header field 'version' must be an unsigned integer");
    return;
  }
  if (items_[0].via.u64 != protocol::kVersion) {
    fail(Code::kUnsupportedVersion, "protocol version " + std::to_string(items_[0].via.u64) +
                                        " is not supported; this endpoint speaks version " +
                                        std::to_string(protocol::kVersion));
    return;
  }
  if (!is_uint(items_[1])) {
    fail(Code::kMalformed, "header field 'type' must be an unsigned integer");
    return;
  }
  // Integers may be any width (docs/protocol.md): a type too wide to be one
  // Hearth defines is a type nobody accepts, not a malformed header.
  type_ =
      items_[1].via.u64 > 0xffffffffu ? kNoSuchType : static_cast<std::uint32_t>(items_[1].via.u64);
  fields_ = root.via.array.size - 2;
  items_ += 2;
}

void HeaderReader::fail(Code code, std::string text) {
  if (!ok()) return;
  error_.code = code;
  error_.text = std::move(text);
}

const msgpack::object* HeaderReader::next(const char* field) {
  if (!ok()) return nullptr;
  if (next_ >= fields_) {
    fail(Code::kMalformed, std::string("missing field '") + field + "' in " + type_name(type_));
    return nullptr;
  }
  return &items_[next_++];
}

void HeaderReader::raw_array(const char* field, std::size_t max_bytes, std::string& out) {
  const msgpack::object* o = next(field);
  if (!o) return;
  if (o->type != msgpack::type::ARRAY) {
    fail(Code::kMalformed, std::string("field '") + field + "' must be an array");
    return;
  }
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, *o);
  if (buffer.size() > max_bytes) {
    fail(Code::kTooLarge,
         std::string("field '") + field + "' exceeds " + std::to_string(max_bytes) + " bytes");
    return;
  }
  out.append(buffer.data(), buffer.size());
}

std::uint64_t HeaderReader::peek_u64(std::size_t i) const {
  if (!items_ || i >= fields_ || !is_uint(items_[i])) return 0;
  return items_[i].via.u64;
}

std::uint64_t HeaderReader::u64(const char* field) {
  const msgpack::object* o = next(field);
  return o ? u64_of(*o, field) : 0;
}

std::uint64_t HeaderReader::u64_of(const msgpack::object& o, const char* field) {
  if (!ok()) return 0;
  if (!is_uint(o)) {
    fail(Code::kMalformed, std::string("field '") + field + "' must be an unsigned integer");
    return 0;
  }
  return o.via.u64;
}

std::string_view HeaderReader::str(const char* field, std::size_t max_bytes) {
  const msgpack::object* o = next(field);
  if (!o) return {};
  if (o->type != msgpack::type::STR) {
    fail(Code::kMalformed, std::string("field '") + field + "' must be a string");
    return {};
  }
  if (o->via.str.size > max_bytes) {
    fail(Code::kTooLarge,
         std::string("field '") + field + "' exceeds " + std::to_string(max_bytes) + " bytes");
    return {};
  }
  return {o->via.str.ptr, o->via.str.size};
}

std::string_view HeaderReader::bin(const char* field, std::size_t max_bytes) {
  const msgpack::object* o = next(field);
  if (!o) return {};
  if (o->type != msgpack::type::BIN) {
    fail(Code::kMalformed, std::string("field '") + field + "' must be binary");
    return {};
  }
  if (o->via.bin.size > max_bytes) {
    fail(Code::kTooLarge,
         std::string("field '") + field + "' exceeds " + std::to_string(max_bytes) + " bytes");
    return {};
  }
  return {o->via.bin.ptr, o->via.bin.size};
}

const msgpack::object* HeaderReader::array(const char* field, std::size_t max_items,
                                           std::size_t* count) {
  *count = 0;
  const msgpack::object* o = next(field);
  if (!o) return nullptr;
  if (o->type != msgpack::type::ARRAY) {
    fail(Code::kMalformed, std::string("field '") + field + "' must be an array");
    return nullptr;
  }
  if (o->via.array.size > max_items) {
    fail(Code::kTooLarge, std::string("field '") + field + "' has " +
                              std::to_string(o->via.array.size) + " items; the limit is " +
                              std::to_string(max_items));
    return nullptr;
  }
  *count = o->via.array.size;
  return o->via.array.ptr;
}

void HeaderReader::u64_array(const char* field, std::size_t max_items,
                             std::vector<std::uint64_t>& out) {
  std::size_t n = 0;
  const msgpack::object* items = array(field, max_items, &n);
  if (!items) return;
  out.reserve(out.size() + n);
  for (std::size_t i = 0; i < n && ok(); ++i) out.push_back(u64_of(items[i], field));
}

HeaderWriter::HeaderWriter(std::uint32_t type, std::size_t field_count) : packer_(buffer_) {
  packer_.pack_array(static_cast<std::uint32_t>(field_count + 2));
  packer_.pack_uint32(protocol::kVersion);
  packer_.pack_uint32(type);
}

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kMalformed:
      return "MALFORMED";
    case Code::kUnsupportedVersion:
      return "UNSUPPORTED_VERSION";
    case Code::kUnknownType:
      return "UNKNOWN_TYPE";
    case Code::kTooLarge:
      return "TOO_LARGE";
    case Code::kAuthFailed:
      return "AUTH_FAILED";
    case Code::kNoRoute:
      return "NO_ROUTE";
    case Code::kUnknownSession:
      return "UNKNOWN_SESSION";
    case Code::kSlowConsumer:
      return "SLOW_CONSUMER";
    case Code::kOverloaded:
      return "OVERLOADED";
    case Code::kShuttingDown:
      return "SHUTTING_DOWN";
    case Code::kLimit:
      return "LIMIT";
    case Code::kHeartbeatTimeout:
      return "HEARTBEAT_TIMEOUT";
    case Code::kClosedByClient:
      return "CLOSED_BY_CLIENT";
    case Code::kRejected:
      return "REJECTED";
    case Code::kResumeGap:
      return "RESUME_GAP";
    case Code::kOwnerChanged:
      return "OWNER_CHANGED";
    case Code::kForbidden:
      return "FORBIDDEN";
  }
  return "UNKNOWN_CODE";
}

const char* type_name(std::uint32_t type) {
  switch (static_cast<Type>(type)) {
    case Type::kIdentify:
      return "IDENTIFY";
    case Type::kReady:
      return "READY";
    case Type::kSubscribed:
      return "SUBSCRIBED";
    case Type::kEvents:
      return "EVENTS";
    case Type::kHeartbeat:
      return "HEARTBEAT";
    case Type::kHeartbeatAck:
      return "HEARTBEAT_ACK";
    case Type::kLeave:
      return "LEAVE";
    case Type::kSessionClosed:
      return "SESSION_CLOSED";
    case Type::kError:
      return "ERROR";
    case Type::kPluginMessage:
      return "PLUGIN_MESSAGE";
    case Type::kPublish:
      return "PUBLISH";
    case Type::kPublishAck:
      return "PUBLISH_ACK";
    case Type::kSubscribe:
      return "SUBSCRIBE";
    case Type::kUnsubscribe:
      return "UNSUBSCRIBE";
    case Type::kUnsubscribed:
      return "UNSUBSCRIBED";
    case Type::kGuildUnavailable:
      return "GUILD_UNAVAILABLE";
    case Type::kResume:
      return "RESUME";
    case Type::kResumed:
      return "RESUMED";
    case Type::kInvalidSession:
      return "INVALID_SESSION";
    case Type::kReconnect:
      return "RECONNECT";
  }
  return "message";
}

}  // namespace hearth::wire
