// Who may connect to the broker: node keys for the backend, publisher keys
// with the guilds each may publish to for the frontend (docs/security.md).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

// A set of guild ids: "all", or a comma-separated list of ids and inclusive
// ranges ("7,100-199,4000").
class GuildSet {
 public:
  // Throws std::invalid_argument naming the bad item.
  static GuildSet parse(const std::string& text);
  bool contains(std::uint64_t guild) const;
  std::string describe() const;

 private:
  bool all_ = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges_;  // sorted, inclusive
};

struct NodeKey {
  std::string name;        // for logs and the connection's ZAP User-Id
  std::string public_key;  // Z85
};

struct PublisherKey {
  std::string name;
  std::string public_key;
  GuildSet guilds;
};

// A bad key list (the message names the file and line).
struct KeyListError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `path` is a directory, each NAME.pub in it one node's key (as `hearth
// keygen` writes them), or a file of "NAME KEY" lines, KEY being a Z85 key or
// the path of a .pub file (relative paths from the list's directory).
std::vector<NodeKey> load_node_keys(const std::string& path);

// A file of "NAME KEY GUILDS" lines, KEY as above, GUILDS as GuildSet::parse.
std::vector<PublisherKey> load_publisher_keys(const std::string& path);

}  // namespace hearth
