#include "cli/demo_mentions.hpp"

#include <chrono>
#include <map>
#include <msgpack.hpp>
#include <vector>

#include "hearth/client.hpp"

namespace hearth::cli {
namespace {

namespace hc = hearth::client;
constexpr std::uint64_t kRegisterKind = 300, kResultKind = 302;

// Polls until `done()` or `timeout`, handing each message to `on`.
template <class On, class Done>
void pump(hc::SessionClient& c, std::chrono::seconds timeout, On on, Done done) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  std::vector<hc::Message> msgs;
  while (!done() && std::chrono::steady_clock::now() < end) {
    msgs.clear();
    c.poll(msgs, std::chrono::milliseconds(20));
    for (auto& m : msgs) on(m);
  }
}

}  // namespace

unsigned register_offline_devices(const std::string& listen, std::uint64_t first_user,
                                  unsigned count, unsigned guilds) {
  hc::SessionClient c(listen);
  for (unsigned i = 0; i < count; ++i) {
    c.identify(first_user + i, first_user + i, "demo-token", {1 + i % guilds});
  }
  std::map<std::uint64_t, std::uint64_t> sessions;  // user -> session
  pump(
      c, std::chrono::seconds(10),
      [&](hc::Message& m) {
        if (auto* r = std::get_if<hc::Ready>(&m)) sessions[r->request_id] = r->session_id;
      },
      [&] { return sessions.size() >= count; });
  for (const auto& [user, session] : sessions) {
    msgpack::sbuffer b;
    msgpack::pack(b, std::make_tuple("demo-device-" + std::to_string(user)));
    c.plugin_message(session, kRegisterKind, std::string_view(b.data(), b.size()));
  }
  unsigned answered = 0, accepted = 0;
  pump(
      c, std::chrono::seconds(5),
      [&](hc::Message& m) {
        auto* p = std::get_if<hc::PluginMessage>(&m);
        if (!p || p->kind != kResultKind) return;
        ++answered;
        auto h = msgpack::unpack(p->payload.data(), p->payload.size());
        accepted += std::get<1>(h.get().as<std::tuple<std::uint64_t, bool, std::string>>());
      },
      [&] { return answered >= sessions.size(); });
  for (const auto& [user, session] : sessions) c.leave(session);
  unsigned closed = 0;
  pump(
      c, std::chrono::seconds(5),
      [&](hc::Message& m) { closed += std::holds_alternative<hc::SessionClosed>(m); },
      [&] { return closed >= sessions.size(); });
  return accepted;
}

std::string mention_envelope(std::uint64_t kind, const std::string& payload, std::uint64_t user) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(kind, payload, std::vector<std::uint64_t>{user},
                                   std::string("You were mentioned"),
                                   "by the demo, about user " + std::to_string(user)));
  return std::string(b.data(), b.size());
}

}  // namespace hearth::cli
