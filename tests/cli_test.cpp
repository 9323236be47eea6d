// The `hearth` command: help, clear errors for bad options, and token files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <variant>

#include "cluster.hpp"

namespace hearth::test {
namespace {

namespace hc = hearth::client;

TEST(Cli, HelpListsEveryCommandAndOption) {
  std::string out;
  EXPECT_EQ(run_hearth({"--help"}, &out), 0);
  for (auto word : {"all-in-one", "demo", "broker", "node"}) {
    EXPECT_NE(out.find(word), std::string::npos) << word;
  }
  EXPECT_EQ(run_hearth({"broker", "--help"}, &out), 0);
  for (auto opt : {"--frontend", "--backend", "--hash-mode", "--pin", "--node-timeout-ms"}) {
    EXPECT_NE(out.find(opt), std::string::npos) << opt;
  }
  EXPECT_EQ(run_hearth({"node", "--help"}, &out), 0);
  for (auto opt : {"--roles", "--shards", "--weight", "--auth", "--client-hwm"}) {
    EXPECT_NE(out.find(opt), std::string::npos) << opt;
  }
}

TEST(Cli, BadOptionsFailWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"bogus"}, "unknown command 'bogus'"},
      {{"node", "--shards", "many"}, "--shards"},
      {{"node", "--roles", "cook"}, "--roles must be"},
      {{"node", "--no-such-option"}, "no-such-option"},
      {{"node", "--auth", "file"}, "--auth-file"},
      {{"node", "--auth", "file", "--auth-file", "/nonexistent/tokens"}, "cannot open token file"},
      {{"node", "--client-hwm", "0"}, "--client-hwm must be greater than 0"},
      {{"broker", "--hash-mode", "sha1"}, "--hash-mode"},
      {{"broker", "--pin", "abc"}, "--pin takes GUILD=NODE"},
      {{"broker", "--config", "/nonexistent.ini"}, "cannot open config file"},
      {{"all-in-one", "--log-level", "loud"}, "--log-level"},
  };
  for (const Case& c : cases) {
    std::string out;
    EXPECT_EQ(run_hearth(c.args, &out), 2) << c.args[0] << " " << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << "expected '" << c.says << "' in: " << out;
  }
}

TEST(Cli, ConfigFileSuppliesOptionsAndRejectsUnknownKeys) {
  const std::string path = "/tmp/hearth-test-" + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream f(path);
    f << "hash-mode = nonsense\n";
  }
  std::string out;
  EXPECT_EQ(run_hearth({"broker", "--config", path}, &out), 2);
  EXPECT_NE(out.find("--hash-mode"), std::string::npos) << out;
  {
    std::ofstream f(path);
    f << "colour = blue\n";
  }
  EXPECT_EQ(run_hearth({"broker", "--config", path}, &out), 2);
  EXPECT_NE(out.find("colour"), std::string::npos) << out;
}

TEST(Cli, PortInUseIsReportedWithTheEndpoint) {
  const int base = port_base() + 18;
  Process first("port-owner",
                {"broker", "--frontend", tcp(base), "--backend", tcp(base + 1), "--insecure"});
  ASSERT_TRUE(first.wait_for_log("publishers on", std::chrono::seconds(5)));
  std::string out;
  EXPECT_EQ(
      run_hearth({"broker", "--frontend", tcp(base), "--backend", tcp(base + 1), "--insecure"},
                 &out),
      1);
  EXPECT_NE(out.find(tcp(base)), std::string::npos) << out;
}

TEST(Cli, TokenFileAcceptsKnownTokensOnly) {
  const std::string path = "/tmp/hearth-test-" + std::to_string(::getpid()) + ".tokens";
  {
    std::ofstream f(path);
    f << "# user token\n42 secret-42\n";
  }
  const int base = port_base() + 13;
  Process aio("auth", {"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1),
                       "--listen", tcp(base + 2), "--auth", "file", "--auth-file", path});
  ASSERT_TRUE(aio.wait_for_log("token file", std::chrono::seconds(10))) << aio.log();
  hc::SessionClient c(tcp(base + 2));
  c.identify(1, 42, "wrong", {1});
  c.identify(2, 42, "secret-42", {1});
  std::vector<hc::Message> msgs;
  bool rejected = false, ready = false;
  for (int i = 0; i < 100 && !(rejected && ready); ++i) {
    c.poll(msgs, std::chrono::milliseconds(50));
    for (auto& m : msgs) {
      if (auto* e = std::get_if<hc::ServerError>(&m)) {
        EXPECT_EQ(e->code, 5u);
        EXPECT_EQ(e->ref, 1u);
        rejected = true;
      } else if (auto* r = std::get_if<hc::Ready>(&m)) {
        EXPECT_EQ(r->request_id, 2u);
        ready = true;
      }
    }
    msgs.clear();
  }
  EXPECT_TRUE(rejected);
  EXPECT_TRUE(ready);
}

}  // namespace
}  // namespace hearth::test
