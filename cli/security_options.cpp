#include "cli/security_options.hpp"

#include <spdlog/spdlog.h>

#include <iostream>

#include "common/curve_keys.hpp"

namespace hearth::cli {
namespace {

// inproc never leaves the process; every other transport (tcp, ipc) can be
// reached by someone else.
bool reachable(const std::string& endpoint) {
  return endpoint.rfind("inproc://", 0) != 0;
}

template <class F>
auto or_usage_error(F&& f) {
  try {
    return f();
  } catch (const UsageError&) {
    throw;
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

std::optional<CurveKeyPair> own_key(const po::variables_map& vm) {
  if (!vm.count("key")) return std::nullopt;
  if (!curve_available()) throw UsageError("--key: this libzmq was built without CURVE");
  return or_usage_error([&] { return load_secret_key_file(vm["key"].as<std::string>()); });
}

void refuse_or_warn(const po::variables_map& vm, const std::string& what, const std::string& fix) {
  if (!vm.count("insecure") || !vm["insecure"].as<bool>()) {
    throw UsageError(what + " would admit anyone: " + fix +
                     " (see 'hearth keygen' and docs/security.md), or give --insecure for "
                     "development");
  }
  spdlog::warn("INSECURE (--insecure): {} admits anyone, unauthenticated and unencrypted", what);
}

}  // namespace

po::options_description security_options(SecurityRole role) {
  po::options_description d("Security (CURVE; docs/security.md)");
  auto add = d.add_options();
  add("key", po::value<std::string>(),
      "this process's secret key file (NAME.key from 'hearth keygen')");
  if (role != SecurityRole::kNode) {
    add("node-keys", po::value<std::string>(),
        "the nodes admitted on the backend: a directory of NAME.pub files, or a file of "
        "'NAME KEY' lines (needs --key)");
    add("publisher-keys", po::value<std::string>(),
        "the publishers admitted on the frontend: a file of 'NAME KEY GUILDS' lines, GUILDS "
        "'all' or ids and ranges like 7,100-199; a PUBLISH outside them gets FORBIDDEN "
        "(needs --key)");
  }
  if (role == SecurityRole::kNode) {
    add("broker-key", po::value<std::string>(),
        "the broker's public key file (BROKER.pub): the node connects over CURVE and accepts "
        "only that broker (needs --key)");
  }
  if (role != SecurityRole::kBroker) {
    add("client-security", po::value<std::string>(),
        "curve or null: the mechanism of the client endpoint (default: curve with --key, "
        "null without); null lets plain libzmq clients connect");
  }
  if (role != SecurityRole::kAllInOne) {
    add("insecure", po::bool_switch(),
        "start even though an endpoint admits unauthenticated peers (development only; "
        "logged loudly)");
  }
  return d;
}

void apply_broker_security(const po::variables_map& vm, BrokerConfig& c, SecurityRole role) {
  c.key = own_key(vm);
  const bool node_keys = vm.count("node-keys") > 0;
  const bool publisher_keys = vm.count("publisher-keys") > 0;
  if ((node_keys || publisher_keys) && !c.key) {
    throw UsageError(std::string(node_keys ? "--node-keys" : "--publisher-keys") +
                     " needs --key, the broker's own secret key");
  }
  if (node_keys) {
    c.node_keys = or_usage_error([&] { return load_node_keys(vm["node-keys"].as<std::string>()); });
    spdlog::info("broker: backend {} is CURVE, admitting {} node key(s)", c.backend,
                 c.node_keys->size());
  }
  if (publisher_keys) {
    c.publishers =
        or_usage_error([&] { return load_publisher_keys(vm["publisher-keys"].as<std::string>()); });
    spdlog::info("broker: frontend {} is CURVE, admitting {} publisher key(s)", c.frontend,
                 c.publishers->size());
    for (const auto& p : *c.publishers) {
      spdlog::info("broker: publisher '{}' may publish to guilds {}", p.name, p.guilds.describe());
    }
  }
  if (role == SecurityRole::kAllInOne) {
    if (!node_keys && reachable(c.backend)) {
      spdlog::warn("all-in-one: backend {} admits any node without authentication", c.backend);
    }
    if (!publisher_keys && reachable(c.frontend)) {
      spdlog::warn("all-in-one: frontend {} admits any publisher without authentication",
                   c.frontend);
    }
    return;
  }
  if (!node_keys && reachable(c.backend)) {
    refuse_or_warn(vm, "the backend " + c.backend, "give --key and --node-keys");
  }
  if (!publisher_keys && reachable(c.frontend)) {
    refuse_or_warn(vm, "the frontend " + c.frontend, "give --key and --publisher-keys");
  }
}

void apply_node_security(const po::variables_map& vm, NodeConfig& c, SecurityRole role) {
  c.key = own_key(vm);
  if (role == SecurityRole::kNode) {
    if (vm.count("broker-key")) {
      if (!c.key) throw UsageError("--broker-key needs --key, the node's own secret key");
      c.broker_public_key =
          or_usage_error([&] { return load_public_key_file(vm["broker-key"].as<std::string>()); });
    } else if (reachable(c.broker)) {
      refuse_or_warn(vm, "the link to the broker " + c.broker, "give --key and --broker-key");
    }
  }
  const std::string mechanism = vm.count("client-security")
                                    ? vm["client-security"].as<std::string>()
                                    : (c.key ? "curve" : "null");
  if (mechanism == "curve") {
    if (!c.key) throw UsageError("--client-security curve needs --key, the node's secret key");
    c.clients_curve = true;
  } else if (mechanism != "null") {
    throw UsageError("--client-security must be 'curve' or 'null'; got '" + mechanism + "'");
  }
}

int run_keygen(int argc, char** argv) {
  po::options_description d("keygen");
  d.add_options()("help,h", "show this help and exit")(
      "dir", po::value<std::string>()->default_value("."), "directory to write the files in")(
      "name", po::value<std::string>(), "the key's name (also the first positional argument)");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(d).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: hearth keygen NAME [--dir DIR]\n\n"
                 "Writes a CURVE key pair: DIR/NAME.key (the secret key, mode 0600; give it to\n"
                 "--key of the process it belongs to) and DIR/NAME.pub (the public key; give it\n"
                 "to the peers: --node-keys, --publisher-keys, --broker-key, or a client). Each\n"
                 "holds one comment line and the 40-character Z85 key. Never overwrites.\n\n"
              << d << "\n";
    return 0;
  }
  if (!vm.count("name")) throw UsageError("keygen needs a NAME (hearth keygen NAME [--dir DIR])");
  if (!curve_available()) throw UsageError("this libzmq was built without CURVE");
  const std::string name = vm["name"].as<std::string>();
  const std::string dir = vm["dir"].as<std::string>();
  const CurveKeyPair pair = or_usage_error([&] { return write_key_files(dir, name); });
  std::cout << "wrote " << dir << "/" << name << ".key (secret, 0600) and " << dir << "/" << name
            << ".pub (public)\npublic key: " << pair.public_key << "\n";
  return 0;
}

}  // namespace hearth::cli
