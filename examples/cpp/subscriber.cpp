// Example: one connection, one session, print every event of the given guilds,
// and keep the session across dropped connections.
//   hearth_subscriber tcp://127.0.0.1:7500 <user id> <guild id>...
//
// The pattern to copy (docs/protocol.md, "HEARTBEAT" and "RESUME"):
// - heartbeat every second and read HeartbeatAck::sessions: fewer than we hold
//   (with no identify or resume unanswered) means the node no longer has our
//   session on this connection, so resume it with the last seq processed;
// - nothing heard for a while means the connection is dead: reconnect() (a
//   fresh socket) and resume there; an identify or resume unanswered for as
//   long was lost with a connection: send it again;
// - after InvalidSession or SessionClosed the session is gone: identify again
//   (a new session, with Subscribed for every guild: reload guild state).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <variant>

#include "hearth/client.hpp"

namespace hc = hearth::client;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kHeartbeat = std::chrono::seconds(1);
constexpr auto kDeadAfter = std::chrono::seconds(5);

struct Session {
  std::uint64_t user = 0;
  std::vector<std::uint64_t> guilds;
  std::optional<std::uint64_t> id;  // set by Ready
  std::string resume_token;
  std::uint64_t last_seq = 0;            // seq of the last stream item processed
  std::optional<std::uint64_t> pending;  // identify or resume awaiting its answer
  Clock::time_point pending_since;
  std::uint64_t next_request = 1;

  std::uint64_t request() {
    pending = next_request++;
    pending_since = Clock::now();
    return *pending;
  }

  void identify(hc::SessionClient& c) {
    id.reset();
    last_seq = 0;
    c.identify(request(), user, "example-token", guilds);
  }
  void resume_or_identify(hc::SessionClient& c) {
    if (!id) return identify(c);
    std::cout << "resuming session " << *id << " after seq " << last_seq << "\n";
    c.resume(request(), *id, resume_token, last_seq);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: " << argv[0] << " ENDPOINT USER_ID GUILD_ID...\n";
    return 2;
  }
  hc::SessionClient client(argv[1]);
  Session s;
  s.user = std::strtoull(argv[2], nullptr, 10);
  for (int i = 3; i < argc; ++i) s.guilds.push_back(std::strtoull(argv[i], nullptr, 10));
  s.identify(client);

  std::vector<hc::Message> messages;
  std::uint64_t nonce = 0;
  auto last_beat = Clock::now(), last_heard = Clock::now();
  for (;;) {
    messages.clear();
    if (client.poll(messages, std::chrono::milliseconds(200)) > 0) last_heard = Clock::now();
    for (const auto& m : messages) {
      // Every stream item, not only events, takes the session's next seq.
      if (auto pos = hc::stream_position(m)) {
        if (pos->session_id != s.id) continue;  // a session we gave up on
        if (pos->seq != s.last_seq + 1) {
          std::cout << "GAP: expected seq " << s.last_seq + 1 << ", got " << pos->seq << "\n";
        }
        s.last_seq = pos->seq;
      }
      if (auto* e = std::get_if<hc::Event>(&m)) {
        std::cout << "event seq " << e->seq << " guild " << e->guild_id << " #" << e->guild_seq
                  << " kind " << e->kind << ": " << e->payload << "\n";
      } else if (auto* sub = std::get_if<hc::Subscribed>(&m)) {
        std::cout << "subscribed to guild " << sub->guild_id << " (" << hc::code_name(sub->code)
                  << ")" << (sub->refetch ? " refetch: reload this guild's state" : "") << "\n";
      } else if (auto* u = std::get_if<hc::GuildUnavailable>(&m)) {
        std::cout << "guild " << u->guild_id << " unavailable (" << hc::code_name(u->code)
                  << "); the node re-subscribes\n";
      } else if (auto* r = std::get_if<hc::Ready>(&m); r && r->request_id == s.pending) {
        s.pending.reset();
        s.id = r->session_id;
        s.resume_token = r->resume_token;
        std::cout << "ready: session " << r->session_id << "\n";
      } else if (auto* rs = std::get_if<hc::Resumed>(&m); rs && rs->request_id == s.pending) {
        s.pending.reset();
        std::cout << "resumed: " << rs->replayed << " item(s) replayed\n";
      } else if (auto* inv = std::get_if<hc::InvalidSession>(&m);
                 inv && inv->request_id == s.pending) {
        std::cout << "invalid session: " << hc::code_name(inv->code) << "; identifying again\n";
        s.identify(client);
      } else if (auto* c = std::get_if<hc::SessionClosed>(&m); c && c->session_id == s.id) {
        std::cout << "closed: " << hc::code_name(c->code) << " " << c->reason
                  << "; identifying again\n";
        s.identify(client);
      } else if (auto* ack = std::get_if<hc::HeartbeatAck>(&m)) {
        // The node sees a new connection (ZeroMQ reconnected by itself, or
        // the node restarted): resume on this same socket.
        if (!s.pending && s.id && ack->sessions < 1) s.resume_or_identify(client);
      } else if (auto* err = std::get_if<hc::ServerError>(&m)) {
        std::cout << "error: " << hc::code_name(err->code) << " " << err->text << "\n";
        if (err->ref != 0 && err->ref == s.pending) return 1;  // identify refused
      }
    }
    const auto now = Clock::now();
    if (now - last_heard > kDeadAfter) {
      std::cout << "no answer from the node: reconnecting\n";
      client.reconnect();
      s.resume_or_identify(client);
      last_heard = now;
    } else if (s.pending && now - s.pending_since > kDeadAfter) {
      std::cout << "no answer to request " << *s.pending << ": sending it again\n";
      s.resume_or_identify(client);
    }
    if (now - last_beat >= kHeartbeat) {
      client.heartbeat(++nonce);
      last_beat = now;
    }
    std::cout.flush();
  }
}
