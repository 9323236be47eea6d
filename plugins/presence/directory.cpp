#include "directory.hpp"

#include <msgpack.hpp>
#include <stdexcept>
#include <tuple>

namespace hearth::presence {

using hearth::plugins::unpack_untrusted;

void UserDirectory::send_to_all(std::uint64_t user, const Entry& e, std::uint64_t except,
                                std::vector<Apply>* out) {
  for (const auto& [guild, when] : e.guilds) {
    if (guild != except) out->push_back(Apply{guild, user, e.status});
  }
}

void UserDirectory::set(std::uint64_t user, const StampedStatus& s, std::uint64_t now_ms,
                        std::vector<Apply>* out) {
  Entry& e = users_[user];
  e.touched_ms = now_ms;
  if (s.stamp <= e.status.stamp) return;  // older than a set already forwarded
  e.status = s;
  send_to_all(user, e, 0, out);
}

void UserDirectory::reg(std::uint64_t guild, std::uint64_t user, const StampedStatus& shown,
                        bool answer, std::uint64_t now_ms, std::vector<Apply>* out) {
  Entry& e = users_[user];
  e.touched_ms = now_ms;
  e.guilds[guild] = now_ms;
  if (shown.stamp > e.status.stamp) {
    e.status = shown;  // a set this directory missed: every guild learns it
    send_to_all(user, e, guild, out);
    if (answer) out->push_back(Apply{guild, user, e.status});
    return;
  }
  const bool differs = shown.stamp < e.status.stamp &&
                       (shown.status != e.status.status || shown.activity != e.status.activity);
  if (answer || differs) out->push_back(Apply{guild, user, e.status});
}

void UserDirectory::unreg(std::uint64_t guild, std::uint64_t user) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  it->second.guilds.erase(guild);
  // Nobody shows the user any more: their status is forgotten, as each guild
  // forgets it once they are offline there (a later session starts afresh).
  if (it->second.guilds.empty()) users_.erase(it);
}

void UserDirectory::expire(std::uint64_t before_ms) {
  for (auto it = users_.begin(); it != users_.end();) {
    auto& guilds = it->second.guilds;
    for (auto g = guilds.begin(); g != guilds.end();) {
      g = g->second < before_ms ? guilds.erase(g) : std::next(g);
    }
    it = guilds.empty() && it->second.touched_ms < before_ms ? users_.erase(it) : std::next(it);
  }
}

std::string pack_directory_set(std::uint64_t user, const StampedStatus& s) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(static_cast<std::uint8_t>(DirectoryOp::kSet), user, s.status,
                                   s.activity, s.stamp));
  return std::string(b.data(), b.size());
}

std::string pack_directory_register(std::uint64_t guild, const std::vector<Registration>& users) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(3);
  p.pack(static_cast<std::uint8_t>(DirectoryOp::kRegister));
  p.pack(guild);
  p.pack_array(static_cast<std::uint32_t>(users.size()));
  for (const Registration& r : users) {
    p.pack(std::make_tuple(r.user, r.shown.status, r.shown.activity, r.shown.stamp, r.answer));
  }
  return std::string(b.data(), b.size());
}

std::string pack_directory_unregister(std::uint64_t guild, std::uint64_t user) {
  msgpack::sbuffer b;
  msgpack::pack(b,
                std::make_tuple(static_cast<std::uint8_t>(DirectoryOp::kUnregister), guild, user));
  return std::string(b.data(), b.size());
}

std::string pack_apply(const Apply& a) {
  msgpack::sbuffer b;
  msgpack::pack(b, std::make_tuple(a.user, a.status.status, a.status.activity, a.status.stamp));
  return std::string(b.data(), b.size());
}

bool parse_apply(const void* data, std::size_t size, Apply* out) {
  try {
    auto h = unpack_untrusted(data, size);
    std::tie(out->user, out->status.status, out->status.activity, out->status.stamp) =
        h.get().as<std::tuple<std::uint64_t, std::uint8_t, std::string, std::uint64_t>>();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool apply_directory_message(UserDirectory& dir, const void* data, std::size_t size,
                             std::uint64_t now_ms, std::vector<Apply>* out) {
  try {
    auto h = unpack_untrusted(data, size);
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 1) return false;
    const msgpack::object* f = o.via.array.ptr;
    switch (static_cast<DirectoryOp>(f[0].as<std::uint8_t>())) {
      case DirectoryOp::kSet: {
        auto [op, user, status, activity, stamp] = o.as<
            std::tuple<std::uint8_t, std::uint64_t, std::uint8_t, std::string, std::uint64_t>>();
        dir.set(user, StampedStatus{status, activity, stamp}, now_ms, out);
        return true;
      }
      case DirectoryOp::kRegister: {
        auto [op, guild, users] =
            o.as<std::tuple<std::uint8_t, std::uint64_t,
                            std::vector<std::tuple<std::uint64_t, std::uint8_t, std::string,
                                                   std::uint64_t, bool>>>>();
        for (const auto& [user, status, activity, stamp, answer] : users) {
          dir.reg(guild, user, StampedStatus{status, activity, stamp}, answer, now_ms, out);
        }
        return true;
      }
      case DirectoryOp::kUnregister: {
        auto [op, guild, user] = o.as<std::tuple<std::uint8_t, std::uint64_t, std::uint64_t>>();
        dir.unreg(guild, user);
        return true;
      }
    }
    return false;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace hearth::presence
