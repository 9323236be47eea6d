#include "nodes/resume_token.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace hearth {

ResumeToken ResumeTokenSource::next() {
  ResumeToken t;
  if (used_ + t.size() > pool_.size()) {
    std::size_t filled = 0;
    while (filled < pool_.size()) {
      const ssize_t n = getrandom(pool_.data() + filled, pool_.size() - filled, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "getrandom");
      }
      filled += static_cast<std::size_t>(n);
    }
    used_ = 0;
  }
  std::memcpy(t.data(), pool_.data() + used_, t.size());
  // Used bytes are wiped so a later memory disclosure cannot reveal past tokens.
  std::memset(pool_.data() + used_, 0, t.size());
  used_ += t.size();
  return t;
}

bool resume_token_matches(const ResumeToken& token, std::string_view given) {
  if (given.size() != token.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(token[i] ^ static_cast<unsigned char>(given[i]));
  }
  // The volatile read keeps the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace hearth
