#include "auth_token.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hearth::push {

AuthToken::AuthToken(std::string fixed, std::string file)
    : file_(std::move(file)), token_(std::make_shared<const std::string>(std::move(fixed))) {
  if (file_.empty()) return;
  std::lock_guard lock(mu_);
  read_file_locked();
  if (token_->empty()) throw std::runtime_error("push.auth_token_file " + file_ + " is empty");
}

void AuthToken::read_file_locked() {
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  if (ec)
    throw std::runtime_error("cannot read push.auth_token_file " + file_ + ": " + ec.message());
  std::ifstream in(file_);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  seen_mtime_ = mtime;
  token_ = std::make_shared<const std::string>(std::move(token));
}

std::shared_ptr<const std::string> AuthToken::current() {
  std::lock_guard lock(mu_);
  if (file_.empty()) return token_;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return token_;
  next_check_ = now + std::chrono::seconds(1);
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  if (!ec && mtime != seen_mtime_) {
    try {
      read_file_locked();
    } catch (const std::exception&) {
      // Keep the last good token: a file being replaced may be missing a moment.
    }
  }
  return token_;
}

}  // namespace hearth::push
