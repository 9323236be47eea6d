#include "common/frames.hpp"

#include <stdexcept>

namespace hearth {

SendResult send_frames(zmq::socket_t& socket, Frames& frames, bool dont_wait) {
  const int base = dont_wait ? ZMQ_DONTWAIT : 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const int flags = base | (i + 1 < frames.size() ? ZMQ_SNDMORE : 0);
    const int rc = zmq_msg_send(frames[i].handle(), socket.handle(), flags);
    if (rc < 0) {
      const int err = zmq_errno();
      // Only the first frame can fail: libzmq admits or refuses a message whole.
      if (err == EAGAIN) return SendResult::kWouldBlock;
      if (err == EHOSTUNREACH) return SendResult::kUnroutable;
      if (err == EINTR && !dont_wait) {
        --i;
        continue;
      }
      throw zmq::error_t();
    }
  }
  return SendResult::kSent;
}

void bind_or_explain(zmq::socket_t& socket, const std::string& endpoint, const char* role) {
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("cannot bind ") + role + " endpoint " + endpoint + ": " +
                             e.what());
  }
}

std::string hex_id(std::string_view id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(id.size() * 2);
  for (unsigned char c : id) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool recv_frames(zmq::socket_t& socket, Frames& out) {
  out.clear();
  while (true) {
    zmq::message_t msg;
    auto got = socket.recv(msg, zmq::recv_flags::dontwait);
    if (!got) {
      if (out.empty()) return false;
      continue;  // the rest of a multipart message is always already here
    }
    const bool more = msg.more();
    out.push_back(std::move(msg));
    if (!more) return true;
  }
}

}  // namespace hearth
