#include "cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <variant>

extern char** environ;

namespace hearth::test {
namespace {

pid_t spawn(const std::string& program, const std::vector<std::string>& args,
            const std::string& log_path) {
  std::vector<char*> argv;
  std::string bin = program;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  // posix_spawn, not fork: the test process may already hold a ZeroMQ context.
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + bin + " failed");
  return pid;
}

int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// Below 32768: Linux hands out ephemeral ports from 32768 up, and a client
// connection of a parallel test could otherwise hold the port we listen on.
int port_base() {
  return 10000 + (getpid() % 1000) * 20;
}
std::string tcp(int port) {
  return "tcp://127.0.0.1:" + std::to_string(port);
}

Process::Process(const std::string& name, const std::vector<std::string>& args,
                 const std::string& program)
    : name_(name) {
  log_path_ = "/tmp/hearth-test-" + std::to_string(getpid()) + "-" + name + ".log";
  pid_ = spawn(program, args, log_path_);
}

Process::~Process() {
  if (pid_ > 0 && stop(std::chrono::seconds(5)) < 0) kill_hard();
}

bool Process::alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Process::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_exit(pid_, std::chrono::seconds(5));
  pid_ = -1;
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  const int rc = wait_exit(pid_, timeout);
  if (rc >= 0) pid_ = -1;
  return rc;
}

int Process::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGINT);  // at once; SIGTERM would drain a node (drain())
  const int rc = wait_exit(pid_, timeout);
  if (rc >= 0) pid_ = -1;
  return rc;
}

void Process::drain() {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
}

bool Process::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (slurp(log_path_).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Process::log() const {
  return slurp(log_path_);
}

std::vector<std::string> node_args(const std::string& name, const std::string& roles,
                                   int broker_port, int listen_port,
                                   const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      "node",     "--name",         name,       "--roles",        roles,
      "--broker", tcp(broker_port), "--listen", tcp(listen_port), "--shards",
      "2",        "--heartbeat-ms", "200",      "--insecure"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<std::string> presence_node_args(const std::string& name, const std::string& roles,
                                            int broker_port, int listen_port, int grace_ms) {
  return node_args(
      name, roles, broker_port, listen_port,
      {"--plugin", std::string("presence=") + HEARTH_PRESENCE_PLUGIN, "--plugin-required",
       "presence", "--plugin-option", "presence.grace_ms=" + std::to_string(grace_ms)});
}

std::vector<std::string> all_in_one_args(int base, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"all-in-one",  "--frontend",  tcp(base),
                                   "--backend",   tcp(base + 1), "--listen",
                                   tcp(base + 2), "--shards",    "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

int run_hearth(const std::vector<std::string>& args, std::string* output,
               const std::string& program) {
  const std::string path = "/tmp/hearth-test-" + std::to_string(getpid()) + "-cmd.log";
  const pid_t pid = spawn(program, args, path);
  const int rc = wait_exit(pid, std::chrono::seconds(20));
  if (output) *output = slurp(path);
  return rc;
}

Fleet::Fleet(const std::vector<std::string>& endpoints, unsigned per_endpoint,
             std::vector<SessionRecord> sessions)
    : sessions_(std::move(sessions)) {
  const std::size_t n_endpoints = endpoints.size();
  for (std::size_t e = 0; e < n_endpoints; ++e) {
    for (unsigned c = 0; c < per_endpoint; ++c) {
      conns_.push_back({std::make_unique<client::SessionClient>(endpoints[e]), {}, {}});
    }
  }
  for (std::size_t i = 0; i < sessions_.size(); ++i) {
    const std::size_t e = i % n_endpoints;
    const std::size_t c = (i / n_endpoints) % per_endpoint;
    Conn& conn = conns_[e * per_endpoint + c];
    conn.by_request[i + 1] = i;
    wanted_links_ += sessions_[i].guilds.size();
    conn.client->identify(i + 1, sessions_[i].user, "token", sessions_[i].guilds);
  }
}

std::size_t Fleet::pump(std::chrono::milliseconds wait) {
  std::size_t handled = 0;
  std::vector<client::Message> msgs;
  for (Conn& conn : conns_) {
    msgs.clear();
    handled += conn.client->poll(msgs, wait);
    for (auto& m : msgs) {
      if (auto pos = client::stream_position(m)) {
        sessions_[conn.by_session.at(pos->session_id)].stream.push_back(pos->seq);
      }
      if (auto* r = std::get_if<client::Ready>(&m)) {
        const std::size_t i = conn.by_request.at(r->request_id);
        sessions_[i].session_id = r->session_id;
        conn.by_session[r->session_id] = i;
      } else if (auto* s = std::get_if<client::Subscribed>(&m)) {
        auto& rec = sessions_[conn.by_session.at(s->session_id)];
        if (s->code == 0) ++subscribed_messages_;
        if (s->code == 0 && rec.subscribed.insert(s->guild_id).second) ++subscribed_links_;
      } else if (auto* ev = std::get_if<client::Event>(&m)) {
        sessions_[conn.by_session.at(ev->session_id)].events.push_back(std::move(*ev));
        ++events_;
      } else if (auto* u = std::get_if<client::GuildUnavailable>(&m)) {
        ++sessions_[conn.by_session.at(u->session_id)].unavailable;
      } else if (auto* c = std::get_if<client::SessionClosed>(&m)) {
        sessions_[conn.by_session.at(c->session_id)].closed.push_back(*c);
      } else if (auto* err = std::get_if<client::ServerError>(&m)) {
        errors_.push_back(*err);
      }
    }
  }
  return handled;
}

std::string stream_gap(const SessionRecord& s) {
  for (std::size_t i = 0; i < s.stream.size(); ++i) {
    if (s.stream[i] != i + 1) {
      return "session " + std::to_string(s.session_id) + ": stream item " + std::to_string(i + 1) +
             " has seq " + std::to_string(s.stream[i]);
    }
  }
  return "";
}

bool Fleet::all_subscribed() const {
  return subscribed_links_ == wanted_links_;
}

void Fleet::heartbeat_all() {
  for (Conn& c : conns_) c.client->heartbeat();
}

}  // namespace hearth::test
