#include "device_index.hpp"

#include <algorithm>

namespace hearth::push {
namespace {

template <class T>
void erase_value(std::vector<T>& v, const T& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}

}  // namespace

void DeviceIndex::add(std::uint64_t user, const std::string& token,
                      const std::vector<std::uint64_t>& guilds) {
  if (auto it = owner_.find(token); it != owner_.end()) erase_token(it->second, token);
  auto& mine = tokens_[user];
  mine.push_back(token);
  owner_[token] = user;
  while (mine.size() > max_devices_) {
    owner_.erase(mine.front());
    mine.erase(mine.begin());
  }
  drop_memberships(user);
  auto& joined = guilds_of_[user];
  for (std::uint64_t g : guilds) {
    if (std::find(joined.begin(), joined.end(), g) != joined.end()) continue;
    joined.push_back(g);
    members_[g].push_back(user);
  }
}

bool DeviceIndex::remove(const std::string& token, std::optional<std::uint64_t> user) {
  const auto found = owner(token);
  if (!found || (user && *found != *user)) return false;
  erase_token(*found, token);
  return true;
}

std::optional<std::uint64_t> DeviceIndex::owner(const std::string& token) const {
  auto it = owner_.find(token);
  if (it == owner_.end()) return std::nullopt;
  return it->second;
}

void DeviceIndex::erase_token(std::uint64_t user, const std::string& token) {
  owner_.erase(token);
  auto it = tokens_.find(user);
  if (it == tokens_.end()) return;
  erase_value(it->second, token);
  if (it->second.empty()) {
    tokens_.erase(it);
    drop_memberships(user);  // without a device, a user's guilds do not matter here
  }
}

void DeviceIndex::drop_memberships(std::uint64_t user) {
  auto it = guilds_of_.find(user);
  if (it == guilds_of_.end()) return;
  for (std::uint64_t g : it->second) {
    auto m = members_.find(g);
    if (m == members_.end()) continue;
    erase_value(m->second, user);
    if (m->second.empty()) members_.erase(m);
  }
  guilds_of_.erase(it);
}

void DeviceIndex::load_device(std::uint64_t user, const std::string& token) {
  tokens_[user].push_back(token);
  owner_[token] = user;
}

void DeviceIndex::load_membership(std::uint64_t user, std::uint64_t guild) {
  if (!tokens_.contains(user)) return;
  guilds_of_[user].push_back(guild);
  members_[guild].push_back(user);
}

void DeviceIndex::clear() {
  owner_.clear();
  tokens_.clear();
  guilds_of_.clear();
  members_.clear();
}

std::vector<std::string> DeviceIndex::tokens_of(std::uint64_t user) const {
  auto it = tokens_.find(user);
  return it == tokens_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::uint64_t> DeviceIndex::members_with_devices(std::uint64_t guild) const {
  auto it = members_.find(guild);
  return it == members_.end() ? std::vector<std::uint64_t>{} : it->second;
}

}  // namespace hearth::push
