// Example: publish one event and wait for its acknowledgement.
//   hearth_publisher tcp://127.0.0.1:7400 <guild id> <text>
#include <cstdlib>
#include <iostream>
#include <variant>

#include "hearth/client.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " ENDPOINT GUILD_ID TEXT\n";
    return 2;
  }
  namespace hc = hearth::client;
  hc::Publisher publisher(argv[1]);
  if (!publisher.publish(std::strtoull(argv[2], nullptr, 10), /*kind=*/1, argv[3], /*ack_id=*/1)) {
    std::cerr << "not sent: the broker took nothing within the send timeout (5 s)\n";
    return 1;
  }
  std::vector<hc::Message> replies;
  if (publisher.poll(replies, std::chrono::milliseconds(3000)) == 0) {
    std::cerr << "no acknowledgement within 3 s (is the broker running?)\n";
    return 1;
  }
  if (auto* ack = std::get_if<hc::PublishAck>(&replies[0])) {
    std::cout << "published to guild " << ack->guild_id << " as #" << ack->guild_seq << " (epoch "
              << ack->epoch << ")\n";
    return 0;
  }
  if (auto* err = std::get_if<hc::ServerError>(&replies[0])) {
    std::cerr << "error " << hc::code_name(err->code) << ": " << err->text << "\n";
  }
  return 1;
}
