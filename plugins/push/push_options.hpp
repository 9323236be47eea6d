// The push plugin's options (--plugin-option push.KEY=VALUE); docs/push.md
// lists them with their defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "collector.hpp"

namespace hearth::push {

struct PushOptions {
  std::string url;  // required: the provider's send endpoint
  std::string auth_token;
  std::string auth_token_file;       // re-read when it changes (a sidecar refreshes OAuth tokens)
  std::string ca_file;               // extra CA bundle to trust (a company gateway's own CA)
  std::vector<std::string> headers;  // extra "Name: value" headers on every request
  bool http2 = true;                 // false: HTTP/1.1 keep-alive pool
  std::size_t connections = 4;       // HTTP/1.1: connections per pusher
  std::size_t pushers = 2;
  std::size_t max_in_flight = 100;  // per pusher (per HTTP/2 connection)
  std::size_t buffer = 10000;
  Keep keep = Keep::kNewest;
  std::chrono::milliseconds max_age{60000};
  std::chrono::milliseconds timeout{10000};
  int max_attempts = 4;
  std::chrono::milliseconds retry_base{200};
  std::string db = "hearth-push.db";
  std::size_t max_devices = 10;
  std::unordered_set<std::uint64_t> kinds;  // pushed in every guild
  std::unordered_map<std::uint64_t, std::unordered_set<std::uint64_t>> guild_kinds;
  std::string title = "New activity";  // for events pushed by kind
  std::uint64_t envelope_kind = 310;
  std::size_t payload_limit = 2048;

  // Whether events of `kind` in `guild` push to the guild's offline members.
  bool pushes_kind(std::uint64_t guild, std::uint64_t kind) const;
};

// Reads every option through `get` (nullopt: not set). Throws
// std::invalid_argument naming the option and what it expects.
PushOptions parse_options(const std::function<std::optional<std::string>(const char*)>& get);

}  // namespace hearth::push
