// Resume tokens: 16 bytes from the kernel's CSPRNG (getrandom), compared in
// constant time, so a session id (not a secret) is not enough to take a
// session over and the comparison leaks nothing through its timing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hearth {

using ResumeToken = std::array<unsigned char, 16>;

// Hands out tokens from a buffer refilled by getrandom(2), one system call per
// 256 tokens. One per shard thread; not thread-safe. Throws
// std::system_error if the kernel has no randomness to give.
class ResumeTokenSource {
 public:
  ResumeToken next();

 private:
  std::array<unsigned char, 4096> pool_{};
  std::size_t used_ = pool_.size();
};

// True when `given` is exactly `token`; time depends only on given.size().
bool resume_token_matches(const ResumeToken& token, std::string_view given);

}  // namespace hearth
