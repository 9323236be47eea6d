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

void ReplayBuffer::push(StreamRecord* record, std::uint64_t seq, std::size_t max_items,
                        std::size_t max_bytes) {
  if (max_items == 0) return;
  const std::size_t size = record->bytes.size();
  while (count_ > 0 && (count_ >= max_items || bytes_ + size > max_bytes)) drop_oldest();
  if (count_ == items_.size()) grow(max_items);
  if (count_ == 0) first_seq_ = seq;
  items_[(head_ + count_) % items_.size()] = record;
  ++count_;
  bytes_ += size;
  ++record->refs;
}

void ReplayBuffer::drop_oldest() {
  StreamRecord*& oldest = items_[head_];
  bytes_ -= oldest->bytes.size();
  release_record(oldest);
  oldest = nullptr;
  head_ = (head_ + 1) % items_.size();
  --count_;
  ++first_seq_;
}

void ReplayBuffer::grow(std::size_t max_items) {
  // Starts small: most sessions hold a few items, and an idle one holds none.
  const std::size_t capacity = std::min(max_items, std::max<std::size_t>(8, items_.size() * 2));
  std::vector<StreamRecord*> bigger(capacity, nullptr);
  for (std::size_t i = 0; i < count_; ++i) bigger[i] = items_[(head_ + i) % items_.size()];
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
