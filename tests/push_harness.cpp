#include "push_harness.hpp"

#include <curl/curl.h>

#include <msgpack.hpp>
#include <regex>
#include <stdexcept>
#include <thread>

namespace hearth::test {
namespace {

size_t append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One HTTP/1.1 request to the sink's control endpoints.
std::string http(const std::string& url, const std::string* post = nullptr) {
  CURL* e = curl_easy_init();
  std::string body;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  if (post) curl_easy_setopt(e, CURLOPT_POSTFIELDS, post->c_str());
  const CURLcode rc = curl_easy_perform(e);
  curl_easy_cleanup(e);
  if (rc != CURLE_OK) throw std::runtime_error(url + ": " + curl_easy_strerror(rc));
  return body;
}

}  // namespace

Sink::Sink(int port, const std::string& cert, const std::string& key, const std::string& alpn)
    : port_(port),
      process_("push-sink-" + std::to_string(port),
               {HEARTH_PUSH_SINK, "--port", std::to_string(port), "--tls-port",
                std::to_string(port + 1), "--cert", cert, "--key", key, "--tls-alpn", alpn},
               "/usr/bin/python3") {
  if (!process_.wait_for_log("push sink listening", std::chrono::seconds(10))) {
    throw std::runtime_error("the sink did not start: " + process_.log());
  }
}

std::string Sink::url(bool tls) const {
  return (tls ? "https://127.0.0.1:" + std::to_string(port_ + 1)
              : "http://127.0.0.1:" + std::to_string(port_)) +
         "/v1/projects/hearth-test/messages:send";
}

void Sink::control(const std::string& json) {
  http("http://127.0.0.1:" + std::to_string(port_) + "/control", &json);
}

std::map<std::string, std::int64_t> Sink::stats() {
  const std::string b = http("http://127.0.0.1:" + std::to_string(port_) + "/stats.msgpack");
  return msgpack::unpack(b.data(), b.size()).get().as<std::map<std::string, std::int64_t>>();
}

std::int64_t Sink::stat(const std::string& name) {
  auto s = stats();
  auto it = s.find(name);
  return it == s.end() ? 0 : it->second;
}

std::vector<Push> Sink::requests(std::size_t from) {
  const std::string b = http("http://127.0.0.1:" + std::to_string(port_) +
                             "/requests.msgpack?from=" + std::to_string(from));
  using Row = std::tuple<std::string, std::uint64_t, std::uint64_t, std::uint64_t, std::string,
                         std::string, std::string, std::string, std::int64_t, std::string,
                         std::int64_t, std::string, double>;
  static_assert(std::tuple_size_v<Row> == 13, "one element per Push field, in order");
  std::vector<Push> out;
  for (auto& r : msgpack::unpack(b.data(), b.size()).get().as<std::vector<Row>>()) {
    out.push_back(std::make_from_tuple<Push>(r));
  }
  return out;
}

bool Sink::wait_count(std::int64_t n, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (stat("count") < n) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void make_certificate(const std::string& cert, const std::string& key) {
  std::string out;
  const int rc =
      run_hearth({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                  "-addext", "subjectAltName=IP:127.0.0.1"},
                 &out, "/usr/bin/openssl");
  if (rc != 0) throw std::runtime_error("openssl req failed: " + out);
}

std::map<std::string, std::uint64_t> push_stats(const std::string& log) {
  const auto at = log.rfind("plugin.push={");
  std::map<std::string, std::uint64_t> out;
  if (at == std::string::npos) return out;
  const std::string line = log.substr(at, log.find('}', at) - at);
  static const std::regex kv("([a-z_0-9]+)=([0-9]+)");
  for (std::sregex_iterator it(line.begin(), line.end(), kv), end; it != end; ++it) {
    out[(*it)[1]] = std::stoull((*it)[2]);
  }
  return out;
}

}  // namespace hearth::test
