// libFuzzer target: the client protocol decoder on every message type, as
// the session node and the broker read them (HeaderReader, field by field,
// with the same limits), and the client library's decoder of what servers
// send. Input: frames separated by the byte sequence "\xff\xfe".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/wire.hpp"
#include "hearth/protocol.hpp"

namespace {

using hearth::protocol::Type;

std::vector<std::string_view> split(std::string_view in) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0;;) {
    const std::size_t sep = in.find("\xff\xfe", at);
    out.push_back(in.substr(at, sep == std::string_view::npos ? in.size() - at : sep - at));
    if (sep == std::string_view::npos || out.size() == 8) break;
    at = sep + 2;
  }
  return out;
}

// Reads the fields of `type` exactly as the server's handler does.
void read_fields(hearth::wire::HeaderReader& r) {
  std::vector<std::uint64_t> guilds;
  std::string presence;
  switch (static_cast<Type>(r.type())) {
    case Type::kIdentify:
      r.u64("request_id");
      r.u64("user_id");
      r.str("token");
      r.u64_array("guilds", hearth::wire::kMaxArrayItems, guilds);
      if (r.has_more()) r.raw_array("presence", hearth::wire::kMaxStringBytes, presence);
      break;
    case Type::kHeartbeat:
      if (r.has_more()) r.u64("nonce");
      break;
    case Type::kLeave:
      r.u64("session_id");
      break;
    case Type::kPluginMessage:
      r.u64("session_id");
      r.u64("kind");
      break;
    case Type::kSubscribe:
    case Type::kUnsubscribe:
      r.u64("request_id");
      r.u64("session_id");
      r.u64_array("guilds", hearth::wire::kMaxArrayItems, guilds);
      break;
    case Type::kResume:
      r.u64("request_id");
      r.u64("session_id");
      r.bin("resume_token", 16);
      r.u64("last_seq");
      break;
    case Type::kPublish:
      r.u64("guild_id");
      r.u64("kind");
      if (r.has_more()) r.u64("ack_id");
      break;
    default: {
      // Server -> client types and unknown ones: walk what is there.
      std::size_t n = 0;
      while (r.ok() && r.has_more() && n++ < 64) r.u64("field");
    }
  }
  r.peek_u64(0);
  r.peek_u64(3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto frames = split({reinterpret_cast<const char*>(data), size});
  hearth::wire::HeaderReader r(frames[0].data(), frames[0].size());
  if (r.ok()) read_fields(r);
  if (!r.ok()) {
    // What the server sends back must be encodable whatever the error says.
    hearth::wire::HeaderWriter w(Type::kError, 3);
    w.u64(static_cast<std::uint64_t>(r.error().code)).str(r.error().text).u64(r.peek_u64(0));
  }
  return 0;
}
