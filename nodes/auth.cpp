#include "nodes/auth.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hearth {
namespace {

class DevTokenChecker final : public TokenChecker {
 public:
  std::optional<std::string> check(std::uint64_t, std::string_view) const override {
    return std::nullopt;
  }
  std::string describe() const override {
    return "development mode: ANY token is accepted (use --auth file for production)";
  }
};

class FileTokenChecker final : public TokenChecker {
 public:
  explicit FileTokenChecker(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open token file '" + path + "'");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::istringstream fields(line);
      std::string user_text, token, extra;
      if (!(fields >> user_text)) continue;
      std::uint64_t user = 0;
      try {
        std::size_t used = 0;
        user = std::stoull(user_text, &used);
        if (used != user_text.size()) throw std::invalid_argument("digits");
      } catch (const std::exception&) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": user id '" + user_text +
                                 "' is not an unsigned integer");
      }
      if (!(fields >> token) || (fields >> extra)) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": expected '<user id> <token>'");
      }
      tokens_[user] = token;
    }
  }

  std::optional<std::string> check(std::uint64_t user, std::string_view token) const override {
    auto it = tokens_.find(user);
    if (it == tokens_.end() || it->second != token) return "invalid token for this user";
    return std::nullopt;
  }
  std::string describe() const override {
    return "token file '" + path_ + "' with " + std::to_string(tokens_.size()) + " user(s)";
  }

 private:
  std::string path_;
  std::unordered_map<std::uint64_t, std::string> tokens_;
};

}  // namespace

std::unique_ptr<TokenChecker> make_dev_token_checker() {
  return std::make_unique<DevTokenChecker>();
}

std::unique_ptr<TokenChecker> make_file_token_checker(const std::string& path) {
  return std::make_unique<FileTokenChecker>(path);
}

}  // namespace hearth
