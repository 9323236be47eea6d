// `hearth`: one command for every process of a Hearth cluster.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>
#include <zmq.hpp>

#include "cli/options.hpp"
#include "cli/run_modes.hpp"
#include "cli/security_options.hpp"
#include "cli/token_command.hpp"

namespace {

constexpr const char* kUsage = R"(usage: hearth [COMMAND] [OPTIONS]

Commands:
  all-in-one   broker and one node of both roles in one process (the default)
  demo         all-in-one plus a demo workload with live output
  broker       the routing broker: membership, the ring, routing
  node         a node hosting guilds, sessions, or both
  keygen       write a CURVE key pair (NAME.key, NAME.pub) for --key and the key lists
  token        mint a signed client token (or a new secret) for --auth signed

'hearth COMMAND --help' lists every option of a command. Options may also come
from an INI file given with --config FILE.
)";

std::atomic<bool> g_stop{false};
std::atomic<bool> g_drain{false};

// Signals are taken by one thread with sigwait, so no ZeroMQ call is ever
// interrupted by a handler. The first SIGTERM drains a node (the broker and
// all-in-one stop at once); a second SIGTERM, or SIGINT, stops at once.
void start_signal_thread(bool drain_first) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread t([set, drain_first] {
    for (;;) {
      int sig = 0;
      sigwait(&set, &sig);
      if (drain_first && sig == SIGTERM && !g_drain.exchange(true)) {
        spdlog::info("signal {}: draining (send it again to stop at once)", sig);
        continue;
      }
      spdlog::info("signal {}: stopping", sig);
      g_stop = true;
      return;
    }
  });
  t.detach();
}

}  // namespace

int main(int argc, char** argv) {
  // A fixed threshold (glibc raises it up to 32 MiB after the first large
  // free) keeps every allocation of 1 MiB or more, such as a large payload,
  // in its own mapping that goes back to the system when freed: a burst of big
  // messages does not leave the process's RSS behind (docs/reliability.md).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  using namespace hearth::cli;
  std::string command = "all-in-one";
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    command = argv[1];
    first = 2;
  } else if (argc > 1 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::cout << kUsage;
    return 0;
  }
  if (command == "keygen") {
    try {
      return run_keygen(argc - first + 1, argv + first - 1);
    } catch (const std::exception& e) {
      std::cerr << "hearth keygen: " << e.what() << "\n";
      return 2;
    }
  }
  if (command == "token") return hearth::cli::run_token(argc - first + 1, argv + first - 1);
  po::options_description desc;
  desc.add(common_options());
  if (command == "broker") {
    desc.add(broker_options()).add(security_options(SecurityRole::kBroker));
  } else if (command == "node") {
    desc.add(node_options(false)).add(security_options(SecurityRole::kNode));
  } else if (command == "all-in-one" || command == "demo") {
    desc.add(broker_options())
        .add(node_options(true))
        .add(security_options(SecurityRole::kAllInOne));
    if (command == "demo") desc.add(demo_options());
  } else {
    std::cerr << "hearth: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  }
  try {
    // argv[first - 1] stands in for the program name Boost expects first.
    auto vm = parse(argc - first + 1, argv + first - 1, desc);
    if (vm.count("help")) {
      std::cout << "usage: hearth " << command << " [OPTIONS]\n\n" << desc << "\n";
      return 0;
    }
    apply_logging(vm);
    start_signal_thread(command == "node");
    if (command == "broker") return run_broker(vm, g_stop);
    if (command == "node") return run_node(vm, g_stop, g_drain);
    return run_all_in_one(vm, g_stop, command == "demo");
  } catch (const UsageError& e) {
    std::cerr << "hearth " << command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "hearth " << command << ": " << e.what() << "\n";
    return 1;
  }
}
