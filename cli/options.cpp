#include "cli/options.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <stdexcept>

#include "common/memory_ceiling.hpp"

namespace hearth::cli {
namespace {

std::chrono::milliseconds ms(const po::variables_map& vm, const char* name) {
  return std::chrono::milliseconds(vm[name].as<unsigned>());
}

void require_positive(const po::variables_map& vm, const char* name) {
  if (vm.count(name) && vm[name].as<unsigned>() == 0) {
    throw UsageError(std::string("--") + name + " must be greater than 0");
  }
}

template <class T>
std::vector<T> list(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::vector<T>>() : std::vector<T>{};
}

void parse_plugins(const po::variables_map& vm, NodeConfig& c) {
  for (const std::string& item : list<std::string>(vm, "plugin")) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      throw UsageError("--plugin takes NAME=PATH; got '" + item + "'");
    }
    PluginSpec spec;
    spec.name = item.substr(0, eq);
    spec.path = item.substr(eq + 1);
    for (const auto& p : c.plugins) {
      if (p.name == spec.name) throw UsageError("--plugin: two plugins named '" + spec.name + "'");
    }
    c.plugins.push_back(spec);
  }
  auto find = [&](const std::string& name, const char* option) -> PluginSpec& {
    for (auto& p : c.plugins) {
      if (p.name == name) return p;
    }
    throw UsageError(std::string(option) + " names plugin '" + name +
                     "', which no --plugin NAME=PATH loads");
  };
  for (const std::string& name : list<std::string>(vm, "plugin-required")) {
    find(name, "--plugin-required").required = true;
  }
  for (const std::string& name : list<std::string>(vm, "plugin-fail-open")) {
    find(name, "--plugin-fail-open").fail_open = true;
  }
  for (const std::string& item : list<std::string>(vm, "plugin-option")) {
    const auto dot = item.find('.');
    const auto eq = item.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot == 0 || eq < dot + 2) {
      throw UsageError("--plugin-option takes NAME.KEY=VALUE; got '" + item + "'");
    }
    find(item.substr(0, dot), "--plugin-option").options[item.substr(dot + 1, eq - dot - 1)] =
        item.substr(eq + 1);
  }
  require_positive(vm, "plugin-failure-limit");
  require_positive(vm, "plugin-failure-window-ms");
  c.plugin_limits.failure_limit = vm["plugin-failure-limit"].as<unsigned>();
  c.plugin_limits.failure_window = ms(vm, "plugin-failure-window-ms");
  c.plugin_limits.hook_budget =
      std::chrono::microseconds(vm["plugin-hook-budget-us"].as<unsigned>());
}

std::uint64_t memory_bytes(const po::variables_map& vm, const char* name) {
  const std::string text = vm[name].as<std::string>();
  if (text == "auto") return default_memory_ceiling();
  std::size_t used = 0;
  std::uint64_t value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string suffix = used ? text.substr(used) : "?";
  const std::uint64_t scale = suffix.empty()                   ? 1
                              : suffix == "K" || suffix == "k" ? 1ull << 10
                              : suffix == "M" || suffix == "m" ? 1ull << 20
                              : suffix == "G" || suffix == "g" ? 1ull << 30
                                                               : 0;
  if (scale == 0 || text.empty() || text[0] == '-') {
    throw UsageError(std::string("--") + name +
                     " takes bytes with an optional K, M or G suffix, 0, or auto; got '" + text +
                     "'");
  }
  return value * scale;
}

}  // namespace

po::options_description common_options() {
  po::options_description d("General");
  d.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>(),
      "read options from this INI file too (key = value, same names as the long options; "
      "the command line wins)")("log-level", po::value<std::string>()->default_value("info"),
                                "trace, debug, info, warn, error or off")(
      "stats-interval-ms", po::value<unsigned>()->default_value(0),
      "log counters every this many ms (0: never)");
  return d;
}

po::options_description broker_options() {
  po::options_description d("Broker");
  d.add_options()("frontend", po::value<std::string>()->default_value("tcp://127.0.0.1:7400"),
                  "endpoint publishers connect to (ROUTER)")(
      "backend", po::value<std::string>()->default_value("tcp://127.0.0.1:7401"),
      "endpoint nodes connect to (ROUTER)")("node-timeout-ms",
                                            po::value<unsigned>()->default_value(3000),
                                            "a node silent this long leaves the ring")(
      "settle-ms", po::value<unsigned>()->default_value(1000),
      "after starting, gather nodes' REGISTERs this long before the first ring, so that a "
      "restarted broker rebuilds the ring the nodes already use instead of moving guilds "
      "(all-in-one: 0)")(
      "hash-mode", po::value<std::string>()->default_value("fast"),
      "fast (64-bit mixer) or ex_hash_ring (md5, places guilds exactly as Discord's ex_hash_ring)")(
      "pin", po::value<std::vector<std::string>>()->composing(),
      "GUILD=NODE: keep that guild on that node while it is live (repeatable)")(
      "max-pending-per-node", po::value<unsigned>()->default_value(200000),
      "messages held for a node that is not reading; half of it pauses publishers, beyond it "
      "messages are dropped and counted (a PUBLISH then gets OVERLOADED)")(
      "max-pending-bytes-per-node", po::value<std::uint64_t>()->default_value(128 << 20),
      "the same in bytes, counting what waits in the broker and in ZeroMQ's pipe to the node")(
      "max-payload", po::value<unsigned>()->default_value(1 << 20),
      "largest PUBLISH payload in bytes; a larger one gets TOO_LARGE")(
      "max-frame-bytes", po::value<unsigned>()->default_value(16 << 20),
      "largest frame read from a publisher (at least --max-payload): payloads up to it that "
      "exceed --max-payload get TOO_LARGE, a frame beyond it drops the publisher's connection")(
      "frontend-buffer-bytes", po::value<std::uint64_t>()->default_value(256 << 20),
      "bytes one publisher connection may have waiting in the broker's receive queue; its "
      "ZeroMQ high-water mark is this / --max-frame-bytes messages (at least 1)")(
      "max-memory", po::value<std::string>()->default_value("auto"),
      "resident memory in bytes (suffix K, M or G) above which PUBLISH gets OVERLOADED; "
      "auto: 80% of the machine's memory; 0: no ceiling");
  return d;
}

po::options_description node_options(bool embedded) {
  po::options_description d("Node");
  auto add = d.add_options();
  add("name", po::value<std::string>()->default_value("node-1"),
      "unique node name (its routing id)");
  if (!embedded) {
    add("broker", po::value<std::string>()->default_value("tcp://127.0.0.1:7401"),
        "broker backend endpoint to connect to");
    add("roles", po::value<std::string>()->default_value("guild,session"),
        "guild, session, or guild,session");
  }
  add("shards", po::value<unsigned>()->default_value(0), "shard threads (0: one per core)");
  add("weight", po::value<unsigned>()->default_value(512),
      "virtual nodes on the ring (a guild node's share of guilds), 1..8192; a ring holds at "
      "most 65,536 over all guild nodes");
  add("listen", po::value<std::string>()->default_value("tcp://127.0.0.1:7500"),
      "endpoint clients connect to (session role)");
  add("auth", po::value<std::string>()->default_value("dev"),
      "dev (accept any token, logged loudly), file (see --auth-file) or signed (HMAC-SHA256 "
      "tokens minted by 'hearth token', see --auth-secret)");
  add("auth-file", po::value<std::string>(), "token file: lines '<user id> <token>'");
  add("auth-secret", po::value<std::string>(),
      "--auth signed: file holding the token secret (at least 32 bytes; 'hearth token "
      "--new-secret FILE' makes one)");
  add("identify-failures-per-connection", po::value<unsigned>()->default_value(5),
      "failed IDENTIFYs after which a connection is closed (0: no limit)");
  add("identify-failures-per-address", po::value<unsigned>()->default_value(30),
      "failed IDENTIFYs from one client address within the window after which its IDENTIFYs "
      "get AUTH_FAILED unchecked until the window passes (0: no limit)");
  add("identify-failure-window-ms", po::value<unsigned>()->default_value(60000),
      "the window of both identify failure limits");
  add("heartbeat-ms", po::value<unsigned>()->default_value(500),
      "how often the node re-registers with the broker");
  add("client-heartbeat-ms", po::value<unsigned>()->default_value(15000),
      "heartbeat interval advertised to clients in READY");
  add("client-timeout-ms", po::value<unsigned>()->default_value(45000),
      "detach a connection's sessions (they wait for RESUME) after this long without a message "
      "from it");
  add("subscribe-timeout-ms", po::value<unsigned>()->default_value(5000),
      "retry a SUBSCRIBE unanswered this long");
  add("subscribe-permits", po::value<unsigned>()->default_value(64),
      "SUBSCRIBEs in flight per guild node (fail-fast semaphore)");
  add("client-hwm", po::value<unsigned>()->default_value(1000),
      "messages queued per connection in ZeroMQ's pipe");
  add("client-backlog", po::value<unsigned>()->default_value(1000),
      "further messages the node holds for a connection whose pipe is full; when both are "
      "full its sessions are closed (SLOW_CONSUMER)");
  add("max-batch", po::value<unsigned>()->default_value(256),
      "events coalesced into one EVENTS message");
  add("max-batch-bytes", po::value<unsigned>()->default_value(64 << 10),
      "payload bytes coalesced into one EVENTS message (a larger payload travels alone)");
  add("client-backlog-bytes", po::value<unsigned>()->default_value(8 << 20),
      "bytes the node holds for a connection whose pipe is full; past it, or past "
      "--client-backlog messages, its sessions are closed (SLOW_CONSUMER)");
  add("flush-interval-us", po::value<unsigned>()->default_value(0),
      "shortest time between two flushes of a shard's pending events (0: flush every cycle); "
      "longer coalesces more events per message under load");
  add("max-sessions-per-connection", po::value<unsigned>()->default_value(10000),
      "sessions one connection may multiplex; more IDENTIFYs get LIMIT");
  add("max-guilds-per-session", po::value<unsigned>()->default_value(1000),
      "guilds one IDENTIFY may list; more gets TOO_LARGE");
  add("max-members-per-guild", po::value<unsigned>()->default_value(1000000),
      "sessions one guild accepts; later subscriptions get LIMIT");
  add("max-guilds", po::value<unsigned>()->default_value(1000000),
      "guilds this guild node holds; publishes to new guilds beyond it get LIMIT");
  if (!embedded) {
    add("max-payload", po::value<unsigned>()->default_value(1 << 20),
        "largest payload in bytes; a client message beyond it plus 1 MiB drops the connection");
  }
  add("resume-grace-ms", po::value<unsigned>()->default_value(60000),
      "how long a session outlives its connection, waiting for a RESUME");
  add("resume-buffer-events", po::value<unsigned>()->default_value(1024),
      "stream items each session keeps for RESUME (oldest dropped first)");
  add("resume-buffer-bytes", po::value<unsigned>()->default_value(1 << 20),
      "payload bytes each session keeps for RESUME (oldest dropped first)");
  add("handoff-timeout-ms", po::value<unsigned>()->default_value(10000),
      "how long a guild's new owner holds its messages for the old owner's HANDOFF before "
      "starting it afresh (its sessions are then told); keep it above the broker's "
      "--node-timeout-ms");
  add("max-held", po::value<unsigned>()->default_value(65536),
      "messages held per shard for guilds moving here; publishes beyond it get OVERLOADED");
  add("drain-window-ms", po::value<unsigned>()->default_value(5000),
      "on SIGTERM, RECONNECT reaches the node's sessions spread over this long");
  add("drain-timeout-ms", po::value<unsigned>()->default_value(30000),
      "on SIGTERM, the node exits once drained or after this long (a second SIGTERM: at once)");
  add("plugin", po::value<std::vector<std::string>>()->composing(),
      "NAME=PATH: load the shared object at PATH as plugin NAME (repeatable; optional unless "
      "--plugin-required NAME)");
  add("plugin-required", po::value<std::vector<std::string>>()->composing(),
      "NAME: the node refuses to start if this plugin fails to load (repeatable)");
  add("plugin-fail-open", po::value<std::vector<std::string>>()->composing(),
      "NAME: when this plugin's on_identify or on_subscribe fails, or it is disabled, admit "
      "instead of refusing (repeatable; the default is to refuse)");
  add("plugin-option", po::value<std::vector<std::string>>()->composing(),
      "NAME.KEY=VALUE: an option for plugin NAME (repeatable)");
  add("plugin-failure-limit", po::value<unsigned>()->default_value(10),
      "hook failures within the window that disable a plugin");
  add("plugin-failure-window-ms", po::value<unsigned>()->default_value(60000),
      "window for --plugin-failure-limit");
  add("plugin-hook-budget-us", po::value<unsigned>()->default_value(2000),
      "a hook running longer than this is counted and logged as slow");
  add("shard-queue", po::value<unsigned>()->default_value(65536),
      "tasks waiting per shard; when full the node stops reading its inputs");
  add("client-output-hard-bytes", po::value<std::uint64_t>()->default_value(32 << 20),
      "bytes queued for one connection (ZeroMQ's pipe and the node's backlog) beyond which it "
      "is closed (SLOW_CONSUMER)");
  add("client-output-soft-bytes", po::value<std::uint64_t>()->default_value(8 << 20),
      "bytes queued for one connection that, held for --client-output-soft-ms, close it "
      "(SLOW_CONSUMER)");
  add("client-output-soft-ms", po::value<unsigned>()->default_value(60000),
      "how long a connection may stay above --client-output-soft-bytes");
  if (!embedded) {
    add("max-memory", po::value<std::string>()->default_value("auto"),
        "resident memory in bytes (suffix K, M or G) above which IDENTIFY, RESUME and SUBSCRIBE "
        "get OVERLOADED; auto: 80% of the machine's memory; 0: no ceiling");
  }
  return d;
}

po::options_description demo_options() {
  po::options_description d("Demo workload");
  d.add_options()("demo-connections", po::value<unsigned>()->default_value(50),
                  "client connections")("demo-sessions-per-connection",
                                        po::value<unsigned>()->default_value(20),
                                        "sessions multiplexed on each connection")(
      "demo-guilds", po::value<unsigned>()->default_value(20), "guilds")(
      "demo-guilds-per-session", po::value<unsigned>()->default_value(3),
      "guilds each session joins, drawn at random")(
      "demo-rate", po::value<unsigned>()->default_value(2000), "events published per second")(
      "demo-payload-bytes", po::value<unsigned>()->default_value(100),
      "bytes per event (at least 16: the first 8 carry the send time)")(
      "demo-duration-s", po::value<unsigned>()->default_value(0),
      "stop after this long (0: never)")(
      "demo-offline-users", po::value<unsigned>()->default_value(0),
      "users who register a device and go offline (needs the push plugin)")(
      "demo-mention-rate", po::value<unsigned>()->default_value(0),
      "PUSH_EVENTs per second mentioning an offline user (needs the push plugin)");
  return d;
}

po::variables_map parse(int argc, char** argv, const po::options_description& desc) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw UsageError("cannot open config file '" + path + "'");
      po::store(po::parse_config_file(in, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

void apply_logging(const po::variables_map& vm) {
  const std::string level = vm["log-level"].as<std::string>();
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw UsageError("--log-level must be trace, debug, info, warn, error or off; got '" + level +
                     "'");
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");
  // Each line reaches a piped or redirected stdout as it is written: the log
  // is low-volume, and operators (and tests) tail it live.
  spdlog::flush_on(spdlog::level::trace);
}

BrokerConfig broker_config(const po::variables_map& vm) {
  BrokerConfig c;
  c.frontend = vm["frontend"].as<std::string>();
  c.backend = vm["backend"].as<std::string>();
  require_positive(vm, "node-timeout-ms");
  require_positive(vm, "max-pending-per-node");
  c.node_timeout = ms(vm, "node-timeout-ms");
  c.settle = ms(vm, "settle-ms");
  c.max_pending_per_node = vm["max-pending-per-node"].as<unsigned>();
  require_positive(vm, "max-payload");
  c.max_payload = vm["max-payload"].as<unsigned>();
  c.max_frame = vm["max-frame-bytes"].as<unsigned>();
  if (c.max_frame < c.max_payload) {
    throw UsageError("--max-frame-bytes must be at least --max-payload");
  }
  c.max_pending_bytes_per_node = vm["max-pending-bytes-per-node"].as<std::uint64_t>();
  c.frontend_buffer = vm["frontend-buffer-bytes"].as<std::uint64_t>();
  if (c.max_pending_bytes_per_node == 0 || c.frontend_buffer == 0) {
    throw UsageError(
        "--max-pending-bytes-per-node and --frontend-buffer-bytes must be greater "
        "than 0");
  }
  c.max_memory = memory_bytes(vm, "max-memory");
  c.stats_interval = ms(vm, "stats-interval-ms");
  const std::string mode = vm["hash-mode"].as<std::string>();
  if (mode == "fast") {
    c.mode = HashMode::kFast;
  } else if (mode == "ex_hash_ring") {
    c.mode = HashMode::kExHashRing;
  } else {
    throw UsageError("--hash-mode must be 'fast' or 'ex_hash_ring'; got '" + mode + "'");
  }
  if (vm.count("pin")) {
    for (const std::string& pin : vm["pin"].as<std::vector<std::string>>()) {
      const auto eq = pin.find('=');
      std::uint64_t guild = 0;
      bool ok = eq != std::string::npos && eq > 0 && eq + 1 < pin.size();
      if (ok) {
        try {
          std::size_t used = 0;
          guild = std::stoull(pin.substr(0, eq), &used);
          ok = used == eq;
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok) throw UsageError("--pin takes GUILD=NODE (e.g. 42=node-big); got '" + pin + "'");
      c.pins[guild] = pin.substr(eq + 1);
    }
  }
  return c;
}

NodeConfig node_config(const po::variables_map& vm) {
  NodeConfig c;
  c.name = vm["name"].as<std::string>();
  if (vm.count("broker")) c.broker = vm["broker"].as<std::string>();
  if (vm.count("roles")) {
    const std::string roles = vm["roles"].as<std::string>();
    c.guild_role = roles == "guild" || roles == "guild,session" || roles == "session,guild";
    c.session_role = roles == "session" || roles == "guild,session" || roles == "session,guild";
    if (!c.guild_role && !c.session_role) {
      throw UsageError("--roles must be guild, session or guild,session; got '" + roles + "'");
    }
  }
  c.shards = vm["shards"].as<unsigned>();
  for (const char* name : {"weight",
                           "heartbeat-ms",
                           "client-heartbeat-ms",
                           "client-timeout-ms",
                           "subscribe-timeout-ms",
                           "subscribe-permits",
                           "client-hwm",
                           "client-backlog",
                           "max-batch",
                           "max-sessions-per-connection",
                           "max-guilds-per-session",
                           "max-members-per-guild",
                           "max-guilds",
                           "max-payload",
                           "shard-queue",
                           "resume-grace-ms",
                           "resume-buffer-events",
                           "resume-buffer-bytes",
                           "max-batch-bytes",
                           "client-backlog-bytes",
                           "handoff-timeout-ms",
                           "max-held",
                           "drain-timeout-ms"}) {
    require_positive(vm, name);
  }
  c.vnodes = vm["weight"].as<unsigned>();
  c.listen = vm["listen"].as<std::string>();
  c.heartbeat = ms(vm, "heartbeat-ms");
  c.client_heartbeat = ms(vm, "client-heartbeat-ms");
  c.client_timeout = ms(vm, "client-timeout-ms");
  c.subscribe_timeout = ms(vm, "subscribe-timeout-ms");
  c.stats_interval = ms(vm, "stats-interval-ms");
  c.subscribe_permits = vm["subscribe-permits"].as<unsigned>();
  c.client_hwm = vm["client-hwm"].as<unsigned>();
  c.client_backlog = vm["client-backlog"].as<unsigned>();
  c.max_batch = vm["max-batch"].as<unsigned>();
  c.max_batch_bytes = vm["max-batch-bytes"].as<unsigned>();
  c.client_backlog_bytes = vm["client-backlog-bytes"].as<unsigned>();
  c.flush_interval = std::chrono::microseconds(vm["flush-interval-us"].as<unsigned>());
  c.max_sessions_per_connection = vm["max-sessions-per-connection"].as<unsigned>();
  c.max_guilds_per_session = vm["max-guilds-per-session"].as<unsigned>();
  c.max_members_per_guild = vm["max-members-per-guild"].as<unsigned>();
  c.max_guilds = vm["max-guilds"].as<unsigned>();
  c.max_payload = vm["max-payload"].as<unsigned>();
  c.shard_queue = vm["shard-queue"].as<unsigned>();
  c.resume_grace = ms(vm, "resume-grace-ms");
  c.resume_buffer_events = vm["resume-buffer-events"].as<unsigned>();
  c.resume_buffer_bytes = vm["resume-buffer-bytes"].as<unsigned>();
  c.handoff_timeout = ms(vm, "handoff-timeout-ms");
  c.max_held = vm["max-held"].as<unsigned>();
  c.drain_window = ms(vm, "drain-window-ms");
  c.drain_timeout = ms(vm, "drain-timeout-ms");
  c.client_output_hard = vm["client-output-hard-bytes"].as<std::uint64_t>();
  c.client_output_soft = vm["client-output-soft-bytes"].as<std::uint64_t>();
  c.client_output_soft_time = ms(vm, "client-output-soft-ms");
  if (c.client_output_hard == 0 || c.client_output_soft > c.client_output_hard) {
    throw UsageError(
        "--client-output-hard-bytes must be greater than 0 and at least "
        "--client-output-soft-bytes");
  }
  c.max_memory = memory_bytes(vm, "max-memory");
  if (c.client_timeout <= c.client_heartbeat) {
    throw UsageError("--client-timeout-ms must be greater than --client-heartbeat-ms");
  }
  parse_plugins(vm, c);
  const std::string auth = vm["auth"].as<std::string>();
  if (auth == "file") {
    if (!vm.count("auth-file")) throw UsageError("--auth file needs --auth-file PATH");
    try {
      c.tokens = make_file_token_checker(vm["auth-file"].as<std::string>());
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
  } else if (auth == "signed") {
    if (!vm.count("auth-secret")) throw UsageError("--auth signed needs --auth-secret FILE");
    try {
      c.tokens = make_signed_token_checker(vm["auth-secret"].as<std::string>());
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
  } else if (auth != "dev") {
    throw UsageError("--auth must be 'dev', 'file' or 'signed'; got '" + auth + "'");
  }
  require_positive(vm, "identify-failure-window-ms");
  c.identify_limits.per_connection = vm["identify-failures-per-connection"].as<unsigned>();
  c.identify_limits.per_address = vm["identify-failures-per-address"].as<unsigned>();
  c.identify_limits.window = ms(vm, "identify-failure-window-ms");
  return c;
}

DemoConfig demo_config(const po::variables_map& vm) {
  DemoConfig d;
  for (const char* name : {"demo-connections", "demo-sessions-per-connection", "demo-guilds",
                           "demo-guilds-per-session", "demo-rate", "demo-payload-bytes"}) {
    require_positive(vm, name);
  }
  d.connections = vm["demo-connections"].as<unsigned>();
  d.sessions_per_connection = vm["demo-sessions-per-connection"].as<unsigned>();
  d.guilds = vm["demo-guilds"].as<unsigned>();
  d.guilds_per_session = std::min(vm["demo-guilds-per-session"].as<unsigned>(), d.guilds);
  d.rate = vm["demo-rate"].as<unsigned>();
  d.payload_bytes = std::max(16u, vm["demo-payload-bytes"].as<unsigned>());
  d.duration_s = vm["demo-duration-s"].as<unsigned>();
  d.offline_users = vm["demo-offline-users"].as<unsigned>();
  d.mention_rate = vm["demo-mention-rate"].as<unsigned>();
  return d;
}

}  // namespace hearth::cli
