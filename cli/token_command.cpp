#include "cli/token_command.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "nodes/signed_token.hpp"

namespace hearth::cli {
namespace {

namespace po = boost::program_options;

// 32 random bytes as 64 hex characters, written to a new file readable by
// its owner only.
int new_secret(const std::string& path) {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::cerr << "hearth token: no random bytes from OpenSSL\n";
    return 1;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (unsigned char b : bytes) {
    text += kHex[b >> 4];
    text += kHex[b & 15];
  }
  text += '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::cerr << "hearth token: cannot create '" << path << "' (it must not exist yet)\n";
    return 1;
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) {
    std::cerr << "hearth token: cannot write '" << path << "'\n";
    return 1;
  }
  std::cerr << "hearth token: wrote a new secret to " << path << "\n";
  return 0;
}

}  // namespace

int run_token(int argc, char** argv) {
  po::options_description d("hearth token");
  auto add = d.add_options();
  add("help,h", "this help");
  add("secret", po::value<std::string>(), "the secret file (as --auth-secret of the nodes)");
  add("user", po::value<std::uint64_t>(), "the user id the token is for");
  add("guilds", po::value<std::string>()->default_value("all"),
      "guilds the user may subscribe to: 'all' or a list like 1,5-9");
  add("expires-in", po::value<std::uint64_t>()->default_value(86400),
      "seconds until the token expires");
  add("new-secret", po::value<std::string>(), "FILE: write a new random secret there and exit");
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(d).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << "usage: hearth token --secret FILE --user ID [--guilds LIST] "
                   "[--expires-in S]\n       hearth token --new-secret FILE\n\n"
                << "Prints a signed token for IDENTIFY on nodes started with --auth signed.\n\n"
                << d << "\n";
      return 0;
    }
    if (vm.count("new-secret")) return new_secret(vm["new-secret"].as<std::string>());
    if (!vm.count("secret") || !vm.count("user")) {
      std::cerr << "hearth token: --secret FILE and --user ID are required (see --help)\n";
      return 2;
    }
    std::string error;
    auto grant = parse_guild_grant(vm["guilds"].as<std::string>(), &error);
    if (!grant) {
      std::cerr << "hearth token: --guilds: " << error << "\n";
      return 2;
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    TokenClaims claims;
    claims.user = vm["user"].as<std::uint64_t>();
    claims.expires = static_cast<std::uint64_t>(now) + vm["expires-in"].as<std::uint64_t>();
    claims.guilds = std::move(*grant);
    std::cout << sign_token(read_token_secret(vm["secret"].as<std::string>()), claims) << "\n";
    return 0;
  } catch (const po::error& e) {
    std::cerr << "hearth token: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "hearth token: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace hearth::cli
