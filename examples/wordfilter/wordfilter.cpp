// wordfilter: drops published events whose payload contains a listed word,
// and answers the custom message kind 100 ("stats") with its counts.
//
// Options (node flags):
//   --plugin wordfilter=/path/to/wordfilter.so
//   --plugin-option wordfilter.words=spam,scam     (comma-separated, case-sensitive)
#include <atomic>
#include <hearth/plugin.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t kStatsKind = 100;

class WordFilter : public hearth::Plugin {
 public:
  bool on_node_start(hearth::Host& host) override {
    std::stringstream list(host.config("words"));
    for (std::string word; std::getline(list, word, ',');) {
      if (!word.empty()) words_.push_back(word);
    }
    host.info("filtering " + std::to_string(words_.size()) + " word(s)");
    return true;
  }

  // Runs on the guild's shard; words_ is read-only after start, the counters
  // are atomics: several shards may call this at once.
  PublishDecision on_publish(hearth::Host& host, const hearth_publish_event& ev) override {
    const std::string_view payload = hearth::view(ev.payload);
    ++seen_;
    for (const std::string& word : words_) {
      if (payload.find(word) != std::string_view::npos) {
        ++dropped_;
        host.count("dropped");
        return PublishDecision::drop("contains a filtered word: " + word);
      }
    }
    return PublishDecision::pass();
  }

  std::vector<std::uint64_t> message_kinds() const override { return {kStatsKind}; }

  void on_message(hearth::Host& host, const hearth_message_event& ev) override {
    host.send_to_session(
        ev.session_id, kStatsKind,
        "seen=" + std::to_string(seen_.load()) + " dropped=" + std::to_string(dropped_.load()));
  }

 private:
  std::vector<std::string> words_;
  std::atomic<std::uint64_t> seen_{0}, dropped_{0};
};

}  // namespace

HEARTH_PLUGIN(WordFilter, "wordfilter", "drops events containing listed words")
