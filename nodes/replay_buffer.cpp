#include "nodes/replay_buffer.hpp"

#include <algorithm>
#include <utility>

namespace hearth {

ReplayBuffer& ReplayBuffer::operator=(ReplayBuffer&& other) noexcept {
  if (this != &other) {
    clear();
    items_ = std::move(other.items_);
    head_ = std::exchange(other.head_, 0);
    count_ = std::exchange(other.count_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
    first_seq_ = std::exchange(other.first_seq_, 0);
    other.items_.clear();
  }
  return *this;
}

void ReplayBuffer::grow() {
  // Starts small (an idle session holds nothing) and grows fourfold: the
  // sessions of a busy guild fill their rings in step, so every growth is a
  // burst of allocations across all of them inside one fan-out; 16 -> 64 ->
  // 256 -> 1,024 is three such bursts instead of seven.
  const std::size_t capacity = std::max<std::size_t>(16, items_.size() * 4);
  std::vector<StreamRecord*> bigger(capacity, nullptr);
  for (std::size_t i = 0; i < count_; ++i) bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
  items_ = std::move(bigger);
  head_ = 0;
}

void ReplayBuffer::clear() {
  while (count_ > 0) drop_oldest();
  items_ = {};
  head_ = 0;
  bytes_ = 0;
}

}  // namespace hearth
