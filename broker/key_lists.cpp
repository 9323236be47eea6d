#include "broker/key_lists.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/curve_keys.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;

std::uint64_t parse_guild(const std::string& text, const std::string& item) {
  std::size_t used = 0;
  std::uint64_t value = 0;
  try {
    if (text.empty() || text[0] == '-' || text[0] == '+') throw std::invalid_argument("sign");
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) {
    throw std::invalid_argument("'" + item + "' is not a guild id or a range A-B");
  }
  return value;
}

// The key in a list line: a Z85 key itself, or the .pub file holding it.
std::string resolve_key(const std::string& field, const fs::path& list_dir) {
  if (is_z85_key(field)) return field;
  fs::path file(field);
  if (file.is_relative()) file = list_dir / file;
  return load_public_key_file(file.string());
}

struct ListLine {
  int number;
  std::vector<std::string> fields;
};

std::vector<ListLine> read_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw KeyListError("cannot open key list '" + path + "'");
  std::vector<ListLine> lines;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    // Only whole-line comments: '#' is a Z85 character.
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::istringstream words(line);
    ListLine l{number, {}};
    for (std::string w; words >> w;) l.fields.push_back(w);
    if (!l.fields.empty()) lines.push_back(std::move(l));
  }
  return lines;
}

void check_unique(const std::string& path, const std::string& name, const std::string& key,
                  std::set<std::string>& names, std::set<std::string>& keys) {
  if (!names.insert(name).second) throw KeyListError(path + ": name '" + name + "' appears twice");
  if (!keys.insert(key).second) {
    throw KeyListError(path + ": the key of '" + name + "' is listed twice");
  }
}

}  // namespace

GuildSet GuildSet::parse(const std::string& text) {
  GuildSet set;
  if (text == "all") {
    set.all_ = true;
    return set;
  }
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const auto dash = item.find('-', 1);
    const std::uint64_t lo = parse_guild(item.substr(0, dash), item);
    const std::uint64_t hi =
        dash == std::string::npos ? lo : parse_guild(item.substr(dash + 1), item);
    if (hi < lo) throw std::invalid_argument("range '" + item + "' ends before it starts");
    set.ranges_.emplace_back(lo, hi);
  }
  if (set.ranges_.empty()) {
    throw std::invalid_argument("a guild list needs 'all' or at least one id or range");
  }
  // Sorted and merged, so that one binary search answers contains().
  std::sort(set.ranges_.begin(), set.ranges_.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
  for (const auto& r : set.ranges_) {
    if (!merged.empty() &&
        (merged.back().second == UINT64_MAX || r.first <= merged.back().second + 1)) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  set.ranges_ = std::move(merged);
  return set;
}

bool GuildSet::contains(std::uint64_t guild) const {
  if (all_) return true;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(guild, UINT64_MAX));
  return it != ranges_.begin() && std::prev(it)->second >= guild;
}

std::string GuildSet::describe() const {
  if (all_) return "all";
  std::string out;
  for (const auto& [lo, hi] : ranges_) {
    if (!out.empty()) out += ',';
    out += std::to_string(lo);
    if (hi != lo) out += "-" + std::to_string(hi);
  }
  return out;
}

std::vector<NodeKey> load_node_keys(const std::string& path) {
  std::vector<NodeKey> keys;
  std::set<std::string> names, seen;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.path().extension() != ".pub") continue;
      NodeKey k{entry.path().stem().string(), load_public_key_file(entry.path().string())};
      check_unique(path, k.name, k.public_key, names, seen);
      keys.push_back(std::move(k));
    }
    std::sort(keys.begin(), keys.end(),
              [](const NodeKey& a, const NodeKey& b) { return a.name < b.name; });
  } else {
    const fs::path dir = fs::path(path).parent_path();
    for (const ListLine& l : read_list(path)) {
      if (l.fields.size() != 2) {
        throw KeyListError(path + ":" + std::to_string(l.number) +
                           ": expected 'NAME KEY' (KEY: a Z85 key or a .pub file)");
      }
      NodeKey k{l.fields[0], resolve_key(l.fields[1], dir)};
      check_unique(path, k.name, k.public_key, names, seen);
      keys.push_back(std::move(k));
    }
  }
  if (keys.empty()) throw KeyListError("node key list '" + path + "' holds no key");
  return keys;
}

std::vector<PublisherKey> load_publisher_keys(const std::string& path) {
  std::vector<PublisherKey> keys;
  std::set<std::string> names, seen;
  const fs::path dir = fs::path(path).parent_path();
  for (const ListLine& l : read_list(path)) {
    const std::string where = path + ":" + std::to_string(l.number);
    if (l.fields.size() != 3) {
      throw KeyListError(where +
                         ": expected 'NAME KEY GUILDS' (GUILDS: all, or ids and ranges "
                         "like 7,100-199)");
    }
    PublisherKey k;
    k.name = l.fields[0];
    try {
      k.public_key = resolve_key(l.fields[1], dir);
      k.guilds = GuildSet::parse(l.fields[2]);
    } catch (const std::exception& e) {
      throw KeyListError(where + ": " + e.what());
    }
    check_unique(path, k.name, k.public_key, names, seen);
    keys.push_back(std::move(k));
  }
  if (keys.empty()) throw KeyListError("publisher key list '" + path + "' holds no key");
  return keys;
}

}  // namespace hearth
