// CURVE key pairs (libzmq's CurveZMQ) and the key files `hearth keygen`
// writes. Keys are 40-character Z85 strings, as zmq_curve_keypair makes them.
//
// Files (docs/security.md, "Keys and CURVE"):
//   NAME.pub  the public key: one line of 40 Z85 characters. Share it.
//   NAME.key  the secret key: one line of 40 Z85 characters, mode 0600.
// Lines starting with '#' and blank lines are ignored in both.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <zmq.hpp>

namespace hearth {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// A key file that cannot be read or holds no valid key.
struct KeyFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::size_t kZ85KeyLength = 40;

// True when libzmq was built with CURVE (Debian's is, with libsodium).
bool curve_available();
// True for 40 characters of the Z85 alphabet that decode to 32 bytes.
bool is_z85_key(std::string_view key);
CurveKeyPair generate_curve_key_pair();
// The public key belonging to a secret key (zmq_curve_public).
std::string curve_public_of(const std::string& secret_key);

// Reads NAME.key; the public key is derived from the secret one.
CurveKeyPair load_secret_key_file(const std::string& path);
// Reads NAME.pub.
std::string load_public_key_file(const std::string& path);
// Writes DIR/NAME.key (0600) and DIR/NAME.pub (0644); refuses to overwrite
// either. Returns the pair written.
CurveKeyPair write_key_files(const std::string& dir, const std::string& name);

// Socket setup, before bind/connect. A server authenticates its peers through
// the ZAP handler of its context for `zap_domain`.
void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& own,
                       const std::string& zap_domain);
// A client accepts only the server holding `server_public_key`.
void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& own,
                       const std::string& server_public_key);

}  // namespace hearth
