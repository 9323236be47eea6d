// Example: one connection, one session, print every event of the given guilds.
//   hearth_subscriber tcp://127.0.0.1:7500 <user id> <guild id>...
#include <cstdlib>
#include <iostream>
#include <variant>

#include "hearth/client.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: " << argv[0] << " ENDPOINT USER_ID GUILD_ID...\n";
    return 2;
  }
  namespace hc = hearth::client;
  hc::SessionClient client(argv[1]);
  std::vector<std::uint64_t> guilds;
  for (int i = 3; i < argc; ++i) guilds.push_back(std::strtoull(argv[i], nullptr, 10));
  client.identify(1, std::strtoull(argv[2], nullptr, 10), "example-token", guilds);
  std::vector<hc::Message> messages;
  for (int idle = 0;;) {
    messages.clear();
    if (client.poll(messages, std::chrono::milliseconds(1000)) == 0 && ++idle % 10 == 0) {
      client.heartbeat();  // stay within the READY heartbeat interval
    }
    for (const auto& m : messages) {
      if (auto* r = std::get_if<hc::Ready>(&m)) {
        std::cout << "ready: session " << r->session_id << "\n";
      } else if (auto* s = std::get_if<hc::Subscribed>(&m)) {
        std::cout << "subscribed to guild " << s->guild_id << " (" << hc::code_name(s->code)
                  << ")\n";
      } else if (auto* e = std::get_if<hc::Event>(&m)) {
        std::cout << "event seq " << e->seq << " guild " << e->guild_id << " #" << e->guild_seq
                  << " kind " << e->kind << ": " << e->payload << "\n";
      } else if (auto* c = std::get_if<hc::SessionClosed>(&m)) {
        std::cout << "closed: " << hc::code_name(c->code) << " " << c->reason << "\n";
        return 1;
      } else if (auto* err = std::get_if<hc::ServerError>(&m)) {
        std::cout << "error: " << hc::code_name(err->code) << " " << err->text << "\n";
        return 1;
      }
    }
    std::cout.flush();
  }
}
