#include "common/curve_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace hearth {
namespace {

// The one key a key file holds: its first line that is neither blank nor a comment.
std::string read_key_line(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw KeyFileError("cannot open " + std::string(what) + " file '" + path + "'");
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line.erase(0, start);
    if (!is_z85_key(line)) {
      throw KeyFileError(std::string(what) + " file '" + path +
                         "' does not hold a 40-character Z85 key");
    }
    return line;
  }
  throw KeyFileError(std::string(what) + " file '" + path + "' holds no key");
}

void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) {
    throw KeyFileError("cannot create '" + path + "': " + std::strerror(errno) +
                       (errno == EEXIST ? " (keygen never overwrites a key)" : ""));
  }
  // O_CREAT applies the umask; a secret key is 0600 whatever the umask says.
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw KeyFileError("cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace

bool curve_available() {
  return zmq_has("curve") != 0;
}

bool is_z85_key(std::string_view key) {
  if (key.size() != kZ85KeyLength) return false;
  std::string copy(key);
  std::uint8_t bytes[32];
  return zmq_z85_decode(bytes, copy.c_str()) != nullptr;
}

CurveKeyPair generate_curve_key_pair() {
  char pub[kZ85KeyLength + 1], sec[kZ85KeyLength + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw std::runtime_error("zmq_curve_keypair failed: libzmq was built without CURVE");
  }
  return {pub, sec};
}

std::string curve_public_of(const std::string& secret_key) {
  char pub[kZ85KeyLength + 1];
  if (!is_z85_key(secret_key) || zmq_curve_public(pub, secret_key.c_str()) != 0) {
    throw KeyFileError("not a valid CURVE secret key");
  }
  return pub;
}

CurveKeyPair load_secret_key_file(const std::string& path) {
  CurveKeyPair pair;
  pair.secret_key = read_key_line(path, "secret key");
  pair.public_key = curve_public_of(pair.secret_key);
  return pair;
}

std::string load_public_key_file(const std::string& path) {
  return read_key_line(path, "public key");
}

CurveKeyPair write_key_files(const std::string& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    throw KeyFileError("key name '" + name + "' must be a plain file name");
  }
  const CurveKeyPair pair = generate_curve_key_pair();
  const std::string base = (dir.empty() ? std::string(".") : dir) + "/" + name;
  auto with = [&](const char* kind, const std::string& key) {
    return "# Hearth CURVE " + std::string(kind) + " key '" + name +
           "' (Z85, written by hearth keygen)\n" + key + "\n";
  };
  write_new_file(base + ".key", with("secret", pair.secret_key), 0600);
  write_new_file(base + ".pub", with("public", pair.public_key), 0644);
  return pair;
}

void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& own,
                       const std::string& zap_domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
  socket.set(zmq::sockopt::zap_domain, zap_domain);
}

void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& own,
                       const std::string& server_public_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

}  // namespace hearth
