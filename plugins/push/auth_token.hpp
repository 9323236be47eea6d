// The provider's bearer token: fixed (auth_token) or read from a file
// (auth_token_file) that an outside process refreshes, as FCM's short-lived
// OAuth 2 tokens need. Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace hearth::push {

class AuthToken {
 public:
  // With a file, reads it now; throws std::runtime_error if it cannot.
  AuthToken(std::string fixed, std::string file);

  // The token to send now (empty: no Authorization header). A file is
  // re-read when its modification time changes, checked at most once a second.
  std::shared_ptr<const std::string> current();

 private:
  void read_file_locked();

  const std::string file_;
  std::mutex mu_;
  std::shared_ptr<const std::string> token_;
  std::filesystem::file_time_type seen_mtime_{};
  std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace hearth::push
