#include "hearth/client.hpp"

#include <thread>
#include <type_traits>
#include <zmq.hpp>

#include "common/curve_keys.hpp"
#include "common/frames.hpp"
#include "common/pipe_bytes.hpp"
#include "common/wire.hpp"

namespace hearth::client {
namespace {

using protocol::Type;

// One context for every client object of the process. Never destroyed, so a
// client object that outlives main() cannot hang the process at exit.
zmq::context_t& shared_context() {
  static auto* ctx = new zmq::context_t(1);
  return *ctx;
}

constexpr int kCurveSendTimeoutMs = 10000;

zmq::socket_t open_dealer(const std::string& endpoint, const std::optional<Curve>& curve) {
  zmq::socket_t s(shared_context(), zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 100000);
  if (curve) {
    CurveKeyPair own{curve->public_key, curve->secret_key};
    if (own.secret_key.empty() && own.public_key.empty()) {
      if (!curve_available()) throw Error("this libzmq was built without CURVE");
      own = generate_curve_key_pair();
    }
    if (!is_z85_key(curve->server_public_key) || !is_z85_key(own.public_key) ||
        !is_z85_key(own.secret_key)) {
      throw Error("CURVE keys must be 40-character Z85 strings");
    }
    make_curve_client(s, own, curve->server_public_key);
    s.set(zmq::sockopt::sndtimeo, kCurveSendTimeoutMs);
  }
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw Error("cannot connect to '" + endpoint + "': " + e.what());
  }
  return s;
}

// Blocking send. Only a CURVE socket has a send timeout (open_dealer): after
// the server refused its handshake libzmq holds no connection to queue on, and
// a send would otherwise wait forever.
void send_or_throw(zmq::socket_t& s, Frames& f) {
  if (send_frames(s, f, false) == SendResult::kWouldBlock) {
    throw Error("could not queue a message within " + std::to_string(kCurveSendTimeoutMs) +
                " ms: the server refused this client's CURVE handshake (wrong key, or the "
                "endpoint does not speak CURVE), or the queue stayed full");
  }
}

void send_header(zmq::socket_t& s, const wire::HeaderWriter& w) {
  Frames f;
  f.push_back(frame_of(w.view()));
  send_or_throw(s, f);
}

void send_raw_frames(zmq::socket_t& s, const std::vector<std::string>& frames) {
  Frames f;
  for (const auto& bytes : frames) f.push_back(frame_of(bytes));
  send_or_throw(s, f);
}

// Decodes one message from a server; malformed input from the server becomes
// a ServerError so the caller sees it. Header fields and EVENTS entry fields
// beyond those read here are ignored, and so are unknown message types: the
// protocol only grows by appending them within a version.
void decode(Frames& frames, std::vector<Message>& out) {
  wire::HeaderReader r(frames[0].data(), frames[0].size());
  auto fail = [&](const std::string& why) {
    out.emplace_back(ServerError{static_cast<std::uint32_t>(protocol::Code::kMalformed),
                                 "client could not decode a server message: " + why, 0});
  };
  auto code = [&](const char* field) { return static_cast<std::uint32_t>(r.u64(field)); };
  if (!r.ok()) return fail(r.error().text);
  switch (static_cast<Type>(r.type())) {
    case Type::kReady: {
      Ready m{r.u64("request_id"), r.u64("session_id"), r.u64("heartbeat_ms"),
              std::string(r.bin("resume_token")), 0};
      m.resume_grace_ms = r.u64("resume_grace_ms");
      if (r.ok()) return out.emplace_back(std::move(m)), void();
      break;
    }
    case Type::kSubscribed: {
      Subscribed m{};
      m.session_id = r.u64("session_id");
      m.seq = r.u64("seq");
      m.guild_id = r.u64("guild_id");
      m.code = code("code");
      m.epoch = r.u64("epoch");
      m.guild_seq = r.u64("guild_seq");
      m.request_id = r.u64("request_id");
      m.refetch = r.u64("refetch") != 0;
      if (r.has_more()) m.reason = std::string(r.str("reason"));
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kEvents: {
      std::size_t n = 0;
      const msgpack::object* items = r.array("events", wire::kMaxArrayItems, &n);
      for (std::size_t i = 0; i < n && r.ok(); ++i) {
        const msgpack::object& e = items[i];
        if (e.type != msgpack::type::ARRAY || e.via.array.size < 9) {
          return fail(
              "EVENTS entry is not [session_id, seq, guild_id, kind, epoch, guild_seq, frame, "
              "offset, length]");
        }
        const msgpack::object* f = e.via.array.ptr;
        const std::uint64_t frame = r.u64_of(f[6], "frame");
        const std::uint64_t offset = r.u64_of(f[7], "offset");
        const std::uint64_t length = r.u64_of(f[8], "length");
        if (!r.ok()) break;
        if (frame == 0 || frame >= frames.size() || offset > frames[frame].size() ||
            length > frames[frame].size() - offset) {
          return fail("EVENTS entry points outside its payload frames");
        }
        Event ev{r.u64_of(f[0], "session_id"),
                 r.u64_of(f[1], "seq"),
                 r.u64_of(f[2], "guild_id"),
                 r.u64_of(f[3], "kind"),
                 r.u64_of(f[4], "epoch"),
                 r.u64_of(f[5], "guild_seq"),
                 std::string(view_of(frames[frame]).substr(offset, length))};
        if (r.ok()) out.emplace_back(std::move(ev));
      }
      if (r.ok()) return;
      break;
    }
    case Type::kUnsubscribed: {
      Unsubscribed m{r.u64("session_id"), r.u64("seq"), r.u64("guild_id"), r.u64("request_id")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kGuildUnavailable: {
      GuildUnavailable m{r.u64("session_id"), r.u64("seq"), r.u64("guild_id"), code("code")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kResumed: {
      Resumed m{r.u64("request_id"), r.u64("session_id"), r.u64("replayed")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kReconnect: {
      Reconnect m{r.u64("session_id"), r.u64("deadline_ms")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kInvalidSession: {
      InvalidSession m{r.u64("request_id"), r.u64("session_id"), code("code"), {}};
      m.reason = std::string(r.str("reason"));
      if (r.ok()) return out.emplace_back(std::move(m)), void();
      break;
    }
    case Type::kSessionClosed: {
      SessionClosed m{r.u64("session_id"), code("code"), {}};
      m.reason = std::string(r.str("reason"));
      if (r.ok()) return out.emplace_back(std::move(m)), void();
      break;
    }
    case Type::kError: {
      ServerError m{code("code"), {}, 0};
      m.text = std::string(r.str("text"));
      m.ref = r.u64("ref");
      if (r.ok()) return out.emplace_back(std::move(m)), void();
      break;
    }
    case Type::kHeartbeatAck: {
      HeartbeatAck m{r.u64("nonce"), r.u64("sessions")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kPublishAck: {
      PublishAck m{r.u64("ack_id"), r.u64("guild_id"), r.u64("guild_seq"), r.u64("epoch")};
      if (r.ok()) return out.emplace_back(m), void();
      break;
    }
    case Type::kPluginMessage: {
      PluginMessage m{r.u64("session_id"), r.u64("kind"), {}};
      if (r.ok() && frames.size() != 2) return fail("PLUGIN_MESSAGE needs one payload frame");
      if (r.ok()) {
        m.payload = std::string(view_of(frames[1]));
        return out.emplace_back(std::move(m)), void();
      }
      break;
    }
    default:
      return;  // a type this library does not know: skip it (versioning rule)
  }
  fail(r.error().text);
}

std::size_t poll_socket(zmq::socket_t& s, std::vector<Message>& out,
                        std::chrono::milliseconds timeout) {
  const std::size_t before = out.size();
  Frames frames;
  if (!recv_frames(s, frames)) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if (!recv_frames(s, frames)) return 0;
  }
  do {
    decode(frames, out);
  } while (recv_frames(s, frames));
  return out.size() - before;
}

}  // namespace

Curve Curve::from_files(const std::string& server_public_file, const std::string& own_secret_file) {
  try {
    Curve c;
    c.server_public_key = load_public_key_file(server_public_file);
    if (!own_secret_file.empty()) {
      const CurveKeyPair own = load_secret_key_file(own_secret_file);
      c.public_key = own.public_key;
      c.secret_key = own.secret_key;
    }
    return c;
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
}

struct SessionClient::Impl {
  std::string endpoint;
  std::optional<Curve> curve;
  zmq::socket_t socket;
};

SessionClient::SessionClient(const std::string& endpoint, const std::optional<Curve>& curve)
    : impl_(new Impl{endpoint, curve, open_dealer(endpoint, curve)}) {}
SessionClient::~SessionClient() = default;

void SessionClient::identify(std::uint64_t request_id, std::uint64_t user_id,
                             std::string_view token, const std::vector<std::uint64_t>& guilds,
                             const std::optional<InitialPresence>& presence) {
  wire::HeaderWriter w(Type::kIdentify, presence ? 5 : 4);
  w.u64(request_id).u64(user_id).str(token).u64_array(guilds);
  if (presence) w.array(2).u64(presence->status).str(presence->activity);
  send_header(impl_->socket, w);
}

void SessionClient::heartbeat(std::uint64_t nonce) {
  wire::HeaderWriter w(Type::kHeartbeat, 1);
  w.u64(nonce);
  send_header(impl_->socket, w);
}

void SessionClient::leave(std::uint64_t session_id) {
  wire::HeaderWriter w(Type::kLeave, 1);
  w.u64(session_id);
  send_header(impl_->socket, w);
}

void SessionClient::subscribe(std::uint64_t request_id, std::uint64_t session_id,
                              const std::vector<std::uint64_t>& guilds) {
  wire::HeaderWriter w(Type::kSubscribe, 3);
  w.u64(request_id).u64(session_id).u64_array(guilds);
  send_header(impl_->socket, w);
}

void SessionClient::unsubscribe(std::uint64_t request_id, std::uint64_t session_id,
                                const std::vector<std::uint64_t>& guilds) {
  wire::HeaderWriter w(Type::kUnsubscribe, 3);
  w.u64(request_id).u64(session_id).u64_array(guilds);
  send_header(impl_->socket, w);
}

void SessionClient::resume(std::uint64_t request_id, std::uint64_t session_id,
                           std::string_view resume_token, std::uint64_t last_seq) {
  wire::HeaderWriter w(Type::kResume, 4);
  w.u64(request_id).u64(session_id).bin(resume_token).u64(last_seq);
  send_header(impl_->socket, w);
}

void SessionClient::reconnect() {
  zmq::socket_t fresh =
      open_dealer(impl_->endpoint, impl_->curve);  // throws before touching the old one
  impl_->socket = std::move(fresh);  // closes the old socket (linger 0: its queue is dropped)
}

void SessionClient::plugin_message(std::uint64_t session_id, std::uint64_t kind,
                                   std::string_view payload) {
  wire::HeaderWriter w(Type::kPluginMessage, 2);
  w.u64(session_id).u64(kind);
  Frames f;
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(payload));
  send_or_throw(impl_->socket, f);
}

void SessionClient::send_raw(const std::vector<std::string>& frames) {
  send_raw_frames(impl_->socket, frames);
}

std::size_t SessionClient::poll(std::vector<Message>& out, std::chrono::milliseconds timeout) {
  return poll_socket(impl_->socket, out, timeout);
}

struct Publisher::Impl {
  zmq::socket_t socket;
  std::chrono::milliseconds send_timeout;
  std::size_t max_queued_bytes;
  // Bytes handed to libzmq and not yet written to the network.
  std::shared_ptr<PipeBytes> queued = std::make_shared<PipeBytes>();

  // Waits, at most until `deadline`, for room for `size` more bytes; a
  // message larger than the whole budget waits for an empty queue.
  bool room_for(std::size_t size, std::chrono::steady_clock::time_point deadline) const {
    while (queued->bytes() > 0 &&
           static_cast<std::size_t>(queued->bytes()) + size > max_queued_bytes) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
};

Publisher::Publisher(const std::string& endpoint, std::chrono::milliseconds send_timeout,
                     std::size_t max_queued_bytes, const std::optional<Curve>& curve)
    : impl_(new Impl{open_dealer(endpoint, curve), send_timeout, max_queued_bytes}) {
  impl_->socket.set(zmq::sockopt::sndtimeo, static_cast<int>(send_timeout.count()));
}

Publisher::Publisher(const std::string& endpoint, const std::optional<Curve>& curve)
    : Publisher(endpoint, std::chrono::seconds(5), 64 << 20, curve) {}
Publisher::~Publisher() = default;

bool Publisher::publish(std::uint64_t guild_id, std::uint64_t kind, std::string_view payload,
                        std::uint64_t ack_id) {
  wire::HeaderWriter w(Type::kPublish, 3);
  w.u64(guild_id).u64(kind).u64(ack_id);
  Frames f;
  f.push_back(frame_of(w.view()));
  f.push_back(frame_of(payload));
  const std::size_t size = frames_bytes(f);
  if (!impl_->room_for(size, std::chrono::steady_clock::now() + impl_->send_timeout)) return false;
  PipeBytes::track(impl_->queued, f[0], size);
  // With ZMQ_SNDTIMEO a blocking send that times out reports EAGAIN. (The
  // byte wait and this one may add up to twice the timeout.)
  return send_frames(impl_->socket, f, false) == SendResult::kSent;
}

bool Publisher::heartbeat(std::uint64_t nonce) {
  wire::HeaderWriter w(Type::kHeartbeat, 1);
  w.u64(nonce);
  Frames f;
  f.push_back(frame_of(w.view()));
  return send_frames(impl_->socket, f, false) == SendResult::kSent;
}

void Publisher::send_raw(const std::vector<std::string>& frames) {
  send_raw_frames(impl_->socket, frames);
}

std::size_t Publisher::poll(std::vector<Message>& out, std::chrono::milliseconds timeout) {
  return poll_socket(impl_->socket, out, timeout);
}

std::optional<StreamPosition> stream_position(const Message& m) {
  return std::visit(
      [](const auto& v) -> std::optional<StreamPosition> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Event> || std::is_same_v<T, Subscribed> ||
                      std::is_same_v<T, Unsubscribed> || std::is_same_v<T, GuildUnavailable>) {
          return StreamPosition{v.session_id, v.seq};
        } else {
          return std::nullopt;
        }
      },
      m);
}

const char* code_name(std::uint32_t code) {
  return wire::code_name(static_cast<protocol::Code>(code));
}

}  // namespace hearth::client
