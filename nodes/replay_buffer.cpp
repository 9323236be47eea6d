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
  // Starts small: most sessions hold a few items, and an idle one holds none.
  const std::size_t capacity = std::max<std::size_t>(8, items_.size() * 2);
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
