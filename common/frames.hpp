// Multipart ZeroMQ messages as vectors of frames, and the send helpers the
// broker and nodes share.
#pragma once

#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

namespace hearth {

using Frames = std::vector<zmq::message_t>;

enum class SendResult { kSent, kWouldBlock, kUnroutable };

// Sends all frames. With `dont_wait`, a full pipe answers kWouldBlock and a
// ROUTER_MANDATORY socket with no such peer answers kUnroutable; in both cases
// nothing was sent and `frames` is untouched. Frames sent are left empty.
SendResult send_frames(zmq::socket_t& socket, Frames& frames, bool dont_wait);

// Receives one whole multipart message (non-blocking). False when none waits.
bool recv_frames(zmq::socket_t& socket, Frames& out);

inline zmq::message_t frame_of(std::string_view bytes) {
  return zmq::message_t(bytes.data(), bytes.size());
}

// Binds, or throws std::runtime_error naming the endpoint and its role
// ("cannot bind client endpoint tcp://...: Address already in use").
void bind_or_explain(zmq::socket_t& socket, const std::string& endpoint, const char* role);

// Routing ids are binary; logs show them as hex.
std::string hex_id(std::string_view id);

inline std::string_view view_of(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

}  // namespace hearth
