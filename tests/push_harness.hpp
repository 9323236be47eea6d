// What the push tests and the push benchmark share: the local provider
// (tests/push_sink.py in its own process), a TLS certificate for it, and the
// push plugin's figures read from a node's stats line.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster.hpp"

namespace hearth::test {

// What the sink recorded about one push.
struct Push {
  std::string token;
  std::uint64_t guild, kind, user;
  std::string payload, title, body, auth;
  std::int64_t conn;
  std::string protocol;
  std::int64_t status;
  std::string headers;  // "name: value" lines, names in lower case, sorted
  double arrived;       // when the sink answered it (after any delay), seconds since the epoch
};

class Sink {
 public:
  // Cleartext (h2c or HTTP/1.1) on `port`, TLS on `port` + 1 with the given
  // certificate, offering `alpn` ("h2,http/1.1"; "http/1.1": no HTTP/2).
  // Throws if it does not start.
  Sink(int port, const std::string& cert, const std::string& key,
       const std::string& alpn = "h2,http/1.1");

  // FCM's path, over https or cleartext.
  std::string url(bool tls) const;
  // POST /control: {"delay_ms": .., "fail_status": .., "fail_count": ..,
  // "unregistered": [..], "reset": true}.
  void control(const std::string& json);
  std::map<std::string, std::int64_t> stats();
  std::int64_t stat(const std::string& name);
  std::vector<Push> requests(std::size_t from = 0);
  // Waits until the sink has answered `n` pushes in all.
  bool wait_count(std::int64_t n, std::chrono::milliseconds timeout);

 private:
  int port_;
  Process process_;
};

// Writes a self-signed certificate for 127.0.0.1 and its key (openssl);
// throws on failure.
void make_certificate(const std::string& cert, const std::string& key);

// The push plugin's counters and gauges from the latest stats line in a
// node's log ("plugin.push={... name=value ...}").
std::map<std::string, std::uint64_t> push_stats(const std::string& log);

}  // namespace hearth::test
