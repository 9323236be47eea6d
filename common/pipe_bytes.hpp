// Bytes of the messages handed to libzmq that it has not released yet. libzmq
// bounds a pipe in messages (its high-water mark), and one message may be
// 64 KiB or 1 MiB; this counts what the pipe and our own backlog hold in bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <zmq.hpp>

#include "common/frames.hpp"

namespace hearth {

class PipeBytes {
 public:
  // Charges `bytes` to `counter` until libzmq releases `header` (after it
  // wrote the message to the kernel, or dropped it), or until the caller
  // destroys it unsent. `header` is rebuilt around a copy of its bytes; put it
  // first in the message, so that its release marks the message as written.
  static void track(const std::shared_ptr<PipeBytes>& counter, zmq::message_t& header,
                    std::size_t bytes);

  // Read from any thread; libzmq's I/O threads decrease it.
  std::int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  friend struct PipeBytesTag;
  std::atomic<std::int64_t> bytes_{0};
};

// Total size of a message's frames.
inline std::size_t frames_bytes(const Frames& frames, std::size_t first = 0) {
  std::size_t n = 0;
  for (std::size_t i = first; i < frames.size(); ++i) n += frames[i].size();
  return n;
}

}  // namespace hearth
