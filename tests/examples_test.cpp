// The shipped examples work against a running node: the Python client written
// from docs/protocol.md alone, and the C++ examples on the client library.
#include <gtest/gtest.h>

#include "cluster.hpp"

namespace hearth::test {
namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kExamples = std::string(HEARTH_SOURCE_DIR) + "/examples/python/";

TEST(Examples, PythonSubscriberReceivesWhatPythonAndCppPublishersSend) {
  const int base = port_base() + 3;
  Process aio("examples", {"all-in-one", "--frontend", tcp(base), "--backend", tcp(base + 1),
                           "--listen", tcp(base + 2), "--shards", "2"});
  ASSERT_TRUE(aio.wait_for_log("with 1 guild node(s)", std::chrono::seconds(10)));
  Process sub("py-subscriber",
              {kExamples + "subscriber.py", "--endpoint", tcp(base + 2), "--user", "5", "--guild",
               "3", "--guild", "4", "--count", "3", "--timeout", "20"},
              kPython);
  ASSERT_TRUE(sub.wait_for_log("subscribed: guild 3", std::chrono::seconds(10))) << sub.log();
  ASSERT_TRUE(sub.wait_for_log("subscribed: guild 4", std::chrono::seconds(10))) << sub.log();

  std::string out;
  ASSERT_EQ(run_hearth({kExamples + "publisher.py", "--endpoint", tcp(base), "--guild", "3",
                        "hello", "from python"},
                       &out, kPython),
            0)
      << out;
  EXPECT_NE(out.find("published to guild 3 as #1"), std::string::npos) << out;
  EXPECT_NE(out.find("published to guild 3 as #2"), std::string::npos) << out;
  ASSERT_EQ(run_hearth({tcp(base), "4", "from c++"}, &out, HEARTH_CPP_PUBLISHER), 0) << out;
  EXPECT_NE(out.find("published to guild 4 as #1"), std::string::npos) << out;

  ASSERT_TRUE(sub.wait_for_log("payload=b'from c++'", std::chrono::seconds(10))) << sub.log();
  EXPECT_EQ(sub.wait(std::chrono::seconds(10)), 0) << sub.log();  // --count 3 reached
  const std::string log = sub.log();
  // seq 1 and 2 are the SUBSCRIBEDs of guilds 3 and 4.
  EXPECT_NE(log.find("event seq=3 guild=3 #1 kind=1 payload=b'hello'"), std::string::npos) << log;
  EXPECT_NE(log.find("event seq=4 guild=3 #2 kind=1 payload=b'from python'"), std::string::npos)
      << log;
  EXPECT_NE(log.find("event seq=5 guild=4 #1 kind=1 payload=b'from c++'"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("GAP"), std::string::npos) << log;
}

TEST(Examples, PublisherWithoutBrokerSaysSo) {
  std::string out;
  EXPECT_EQ(run_hearth({tcp(port_base() + 19), "1", "x"}, &out, HEARTH_CPP_PUBLISHER), 1);
  EXPECT_NE(out.find("no acknowledgement"), std::string::npos) << out;
}

}  // namespace
}  // namespace hearth::test
