#include "push_options.hpp"

#include <charconv>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::push {
namespace {

std::uint64_t to_number(std::string_view text, const char* option) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw std::invalid_argument(std::string("push.") + option + ": '" + std::string(text) +
                                "' is not a non-negative integer");
  }
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto at = s.find(sep);
    if (at != 0) out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

std::unordered_set<std::uint64_t> kind_list(std::string_view s, const char* option) {
  std::unordered_set<std::uint64_t> kinds;
  for (auto k : split(s, ',')) kinds.insert(to_number(k, option));
  return kinds;
}

}  // namespace

bool PushOptions::pushes_kind(std::uint64_t guild, std::uint64_t kind) const {
  if (kinds.contains(kind)) return true;
  auto it = guild_kinds.find(guild);
  return it != guild_kinds.end() && it->second.contains(kind);
}

PushOptions parse_options(const std::function<std::optional<std::string>(const char*)>& get) {
  PushOptions o;
  auto number = [&](const char* key, auto& field, std::uint64_t min) {
    if (auto v = get(key)) {
      const std::uint64_t n = to_number(*v, key);
      if (n < min) {
        throw std::invalid_argument(std::string("push.") + key + " must be at least " +
                                    std::to_string(min));
      }
      field = static_cast<std::remove_reference_t<decltype(field)>>(n);
    }
  };
  // An option with two spellings; anything else names both.
  auto either = [&]<class T>(const char* key, T& field, std::pair<const char*, T> first,
                             std::pair<const char*, T> second) {
    auto v = get(key);
    if (!v) return;
    if (*v == first.first) {
      field = first.second;
    } else if (*v == second.first) {
      field = second.second;
    } else {
      throw std::invalid_argument(std::string("push.") + key + " must be " + first.first + " or " +
                                  second.first + ", not '" + *v + "'");
    }
  };
  auto millis = [&](const char* key, std::chrono::milliseconds& field, std::uint64_t min) {
    std::uint64_t n = static_cast<std::uint64_t>(field.count());
    number(key, n, min);
    field = std::chrono::milliseconds(n);
  };
  if (auto v = get("url")) o.url = *v;
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
    throw std::invalid_argument(
        "push.url must be the provider's http:// or https:// send endpoint, for FCM "
        "https://fcm.googleapis.com/v1/projects/PROJECT/messages:send");
  }
  if (auto v = get("auth_token")) o.auth_token = *v;
  if (auto v = get("auth_token_file")) o.auth_token_file = *v;
  if (auto v = get("ca_file")) o.ca_file = *v;
  if (auto v = get("headers")) {
    // "Name: value; Name: value"
    for (auto h : split(*v, ';')) {
      while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
      const auto colon = h.find(':');
      if (colon == 0 || colon == std::string_view::npos ||
          h.find_first_of("\r\n") != std::string_view::npos) {
        throw std::invalid_argument("push.headers: '" + std::string(h) +
                                    "' is not 'Name: value' (separate headers with ';')");
      }
      o.headers.emplace_back(h);
    }
  }
  either("http", o.http2, {"2", true}, {"1.1", false});
  number("connections", o.connections, 1);
  number("pushers", o.pushers, 1);
  number("max_in_flight", o.max_in_flight, 1);
  number("buffer", o.buffer, 1);
  either("keep", o.keep, {"newest", Keep::kNewest}, {"oldest", Keep::kOldest});
  millis("max_age_ms", o.max_age, 0);
  millis("timeout_ms", o.timeout, 1);
  number("max_attempts", o.max_attempts, 1);
  millis("retry_base_ms", o.retry_base, 1);
  if (auto v = get("db")) o.db = *v;
  number("max_devices", o.max_devices, 1);
  if (auto v = get("kinds")) o.kinds = kind_list(*v, "kinds");
  if (auto v = get("guild_kinds")) {
    // "GUILD:KIND,KIND;GUILD:KIND"
    for (auto entry : split(*v, ';')) {
      const auto colon = entry.find(':');
      if (colon == std::string_view::npos) {
        throw std::invalid_argument("push.guild_kinds: '" + std::string(entry) +
                                    "' is not GUILD:KIND[,KIND...]");
      }
      auto& kinds = o.guild_kinds[to_number(entry.substr(0, colon), "guild_kinds")];
      for (auto k : kind_list(entry.substr(colon + 1), "guild_kinds")) kinds.insert(k);
    }
  }
  if (auto v = get("title")) o.title = *v;
  number("envelope_kind", o.envelope_kind, 1);
  number("payload_limit", o.payload_limit, 0);
  return o;
}

}  // namespace hearth::push
