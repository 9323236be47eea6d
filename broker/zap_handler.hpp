// libzmq's ZAP handler (RFC 27) for one ZeroMQ context: libzmq asks it, on
// inproc://zeromq.zap.01, whether each CURVE peer's public key may connect to
// a socket of a given ZAP domain, and tags the accepted connection's messages
// with the User-Id it answers (read back with zmq_msg_gets "User-Id").
// The handshake itself is libzmq's; this only says yes or no.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

namespace hearth {

struct ZapDomain {
  // Z85 public key -> the User-Id of its connections.
  std::unordered_map<std::string, std::string> keys;
  // Accept any CURVE key (a client endpoint: users authenticate by token);
  // the connection is still encrypted.
  bool any_key = false;
};

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in `ctx` at once (so no handshake can come
  // before it) and answers on its own thread. A domain not in `domains`, and
  // any mechanism but CURVE, is refused.
  ZapHandler(zmq::context_t& ctx, std::map<std::string, ZapDomain> domains);
  ~ZapHandler();  // stops and joins the thread
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  std::uint64_t accepted() const { return accepted_.load(); }
  std::uint64_t refused() const { return refused_.load(); }

 private:
  void run();
  // Answers one request; false when the message is not a ZAP request.
  bool answer(std::vector<zmq::message_t>& request);

  std::map<std::string, ZapDomain> domains_;
  zmq::socket_t socket_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  // Refusals logged this second; past a few, only a count per second is.
  std::uint64_t window_start_ms_ = 0;
  unsigned window_logged_ = 0;
  std::uint64_t window_suppressed_ = 0;
  std::thread thread_;
};

}  // namespace hearth
