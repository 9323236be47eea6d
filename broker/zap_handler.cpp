#include "broker/zap_handler.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/frames.hpp"

namespace hearth {
namespace {

constexpr unsigned kLoggedPerSecond = 5;

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::string z85_of(const zmq::message_t& key) {
  char text[41];
  if (key.size() != 32 || !zmq_z85_encode(text, static_cast<const std::uint8_t*>(key.data()), 32)) {
    return "";
  }
  return text;
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& ctx, std::map<std::string, ZapDomain> domains)
    : domains_(std::move(domains)), socket_(ctx, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  thread_.join();
}

void ZapHandler::run() {
  Frames request;
  while (!stop_.load(std::memory_order_relaxed)) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    while (recv_frames(socket_, request)) {
      if (!answer(request)) {
        // A REP socket must answer before it can read again.
        Frames empty;
        empty.emplace_back();
        send_frames(socket_, empty, false);
      }
    }
  }
  socket_.close();
}

bool ZapHandler::answer(Frames& req) {
  // [version, request id, domain, address, identity, mechanism, credentials...]
  if (req.size() < 6 || view_of(req[0]) != "1.0") return false;
  const std::string domain(view_of(req[2]));
  const std::string address(view_of(req[3]));
  const std::string mechanism(view_of(req[5]));
  std::string user_id;
  std::string why;
  const auto d = domains_.find(domain);
  if (d == domains_.end()) {
    why = "no such ZAP domain";
  } else if (mechanism != "CURVE" || req.size() < 7) {
    why = "mechanism " + mechanism + " is not accepted (CURVE only)";
  } else {
    const std::string key = z85_of(req[6]);
    const auto k = d->second.keys.find(key);
    if (k != d->second.keys.end()) {
      user_id = k->second;
    } else if (d->second.any_key && !key.empty()) {
      user_id = key;
    } else {
      why = "public key " + key + " is not listed";
    }
  }
  const bool ok = why.empty();
  Frames reply;
  reply.push_back(frame_of("1.0"));
  reply.push_back(std::move(req[1]));
  reply.push_back(frame_of(ok ? "200" : "400"));
  reply.push_back(frame_of(ok ? "OK" : why));
  reply.push_back(frame_of(user_id));
  reply.emplace_back();  // no metadata
  send_frames(socket_, reply, false);
  if (ok) {
    ++accepted_;
    return true;
  }
  ++refused_;
  // An attacker can knock as often as it likes: a few lines per second at most.
  const std::uint64_t now = now_ms();
  if (now - window_start_ms_ >= 1000) {
    if (window_suppressed_ > 0) {
      spdlog::warn("zap: {} more connection(s) refused in the last second", window_suppressed_);
    }
    window_start_ms_ = now;
    window_logged_ = 0;
    window_suppressed_ = 0;
  }
  if (window_logged_ < kLoggedPerSecond) {
    ++window_logged_;
    spdlog::warn("zap: refused a connection from {} to domain '{}': {}", address, domain, why);
  } else {
    ++window_suppressed_;
  }
  return true;
}

}  // namespace hearth
