#include "common/pipe_bytes.hpp"

#include <string>

namespace hearth {

struct PipeBytesTag {
  std::shared_ptr<PipeBytes> counter;
  std::int64_t bytes;
  std::string header;

  static void release(void* /*data*/, void* hint) {
    auto* tag = static_cast<PipeBytesTag*>(hint);
    tag->counter->bytes_.fetch_sub(tag->bytes, std::memory_order_relaxed);
    delete tag;
  }
};

void PipeBytes::track(const std::shared_ptr<PipeBytes>& counter, zmq::message_t& header,
                      std::size_t bytes) {
  auto* tag =
      new PipeBytesTag{counter, static_cast<std::int64_t>(bytes), std::string(view_of(header))};
  counter->bytes_.fetch_add(tag->bytes, std::memory_order_relaxed);
  // std::string::data() is never null, so libzmq always calls release.
  header = zmq::message_t(tag->header.data(), tag->header.size(), &PipeBytesTag::release, tag);
}

}  // namespace hearth
