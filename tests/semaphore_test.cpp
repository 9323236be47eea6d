#include "common/semaphore.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/backoff.hpp"
#include "common/bounded_queue.hpp"

namespace hearth {
namespace {

TEST(FailFastSemaphore, RefusesAtOnceAtTheLimit) {
  FailFastSemaphore sem(2);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
  sem.release();
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_EQ(sem.in_use(), 2u);
}

TEST(FailFastSemaphore, NeverExceedsItsLimitUnderContention) {
  constexpr std::uint32_t kLimit = 2;
  FailFastSemaphore sem(kLimit);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<std::uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!sem.try_acquire()) {
          ++refused;
          continue;
        }
        const int now = ++holders;
        int seen = max_holders.load();
        while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();  // hold the permit across a reschedule
        --holders;
        sem.release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_holders.load(), static_cast<int>(kLimit));
  EXPECT_EQ(sem.in_use(), 0u);
  EXPECT_GT(refused.load(), 0u) << "8 threads on 2 permits should have been refused sometimes";
}

TEST(JitteredBackoff, GrowsAndStaysWithinJitterAndCap) {
  JitteredBackoff b(std::chrono::milliseconds(100), std::chrono::milliseconds(2000), 1);
  for (unsigned attempt = 0; attempt < 12; ++attempt) {
    const auto d = std::min<std::int64_t>(2000, 100LL << attempt);
    for (int i = 0; i < 50; ++i) {
      const auto got = b.delay(attempt).count();
      EXPECT_GE(got, d / 2);
      EXPECT_LE(got, d + d / 2);
    }
  }
}

TEST(JitteredBackoff, SpreadsRetries) {
  JitteredBackoff b(std::chrono::milliseconds(1000), std::chrono::milliseconds(1000), 3);
  std::set<std::int64_t> distinct;
  for (int i = 0; i < 100; ++i) distinct.insert(b.delay(0).count());
  EXPECT_GT(distinct.size(), 50u);
}

TEST(BoundedQueue, RefusesWhenFullAndKeepsTheItem) {
  BoundedQueue<std::unique_ptr<int>> q(2);
  auto a = std::make_unique<int>(1), b = std::make_unique<int>(2), c = std::make_unique<int>(3);
  EXPECT_TRUE(q.try_push(a));
  EXPECT_TRUE(q.try_push(b));
  EXPECT_FALSE(q.try_push(c));
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, 3);
  std::deque<std::unique_ptr<int>> out;
  q.pop_all(out, std::chrono::milliseconds(0));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0], 1);
  EXPECT_EQ(*out[1], 2);
  EXPECT_TRUE(q.try_push(c));
}

}  // namespace
}  // namespace hearth
