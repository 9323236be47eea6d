#include "fcm.hpp"

#include <cstdint>

namespace hearth::push {

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                            (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<std::uint8_t>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<std::uint8_t>(s[i + k]) >> 6) != 2) return 0;
  }
  return n;
}

}  // namespace

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else if (const std::size_t n = utf8_length(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
  return out;
}

std::string fcm_body(const PushRequest& r, std::size_t payload_limit) {
  const PushEvent& e = *r.event;
  std::string b = R"({"message":{"token":)" + json_string(r.token);
  if (!e.title.empty() || !e.body.empty()) {
    b += R"(,"notification":{"title":)" + json_string(e.title) + R"(,"body":)" +
         json_string(e.body) + "}";
  }
  b += R"(,"data":{"guild":")" + std::to_string(e.guild) + R"(","kind":")" +
       std::to_string(e.kind) + R"(","user":")" + std::to_string(r.user) + '"';
  if (e.payload.size() <= payload_limit) {
    b += R"(,"payload":")" + base64(e.payload) + '"';
  } else {
    b += R"(,"payload_omitted":"1")";
  }
  b += "}}}";
  return b;
}

Outcome classify(long status, bool timed_out, std::string_view body) {
  using A = Outcome::Action;
  if (status >= 200 && status < 300) return {A::kDelivered, FailReason::kRejected};
  if (status == 0) return {A::kRetry, timed_out ? FailReason::kTimeout : FailReason::kConnection};
  // FCM v1 answers 404 UNREGISTERED for a token that is gone, and 400
  // INVALID_ARGUMENT naming the token for one that never was.
  if (status == 404 || body.find("UNREGISTERED") != std::string_view::npos ||
      (status == 400 && body.find("registration token") != std::string_view::npos)) {
    return {A::kFail, FailReason::kInvalidToken};
  }
  if (status == 401 || status == 403) return {A::kFail, FailReason::kAuth};
  if (status == 429) return {A::kRetry, FailReason::kRateLimited};
  if (status >= 500) return {A::kRetry, FailReason::kServerError};
  return {A::kFail, FailReason::kRejected};
}

}  // namespace hearth::push
