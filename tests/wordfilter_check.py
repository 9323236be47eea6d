"""Checks the wordfilter example plugin through the documented protocol."""
import sys
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/examples/python")
from hearth_client import Publisher, SessionClient  # noqa: E402

base = int(sys.argv[1])
sub = SessionClient(f"tcp://127.0.0.1:{base + 2}")
sub.identify(1, 42, "t", [1])
session, deadline = None, time.time() + 10
subscribed = False
while not subscribed and time.time() < deadline:
    for name, m in sub.receive(100):
        if name == "ready":
            session = m["session_id"]
        subscribed |= name == "subscribed"
assert subscribed, "no SUBSCRIBED"

pub = Publisher(f"tcp://127.0.0.1:{base}")
pub.publish(1, 1, b"hello", ack_id=1)
pub.publish(1, 1, b"buy spam now", ack_id=2)
answers, deadline = {}, time.time() + 10
while len(answers) < 2 and time.time() < deadline:
    for name, m in pub.receive(100):
        answers[m.get("ack_id", m.get("ref"))] = (name, m)
assert answers[1][0] == "publish_ack", answers
assert answers[2][0] == "error" and answers[2][1]["code"] == "REJECTED", answers
assert "spam" in answers[2][1]["text"], answers

events, reply, deadline = [], None, time.time() + 10
sub.plugin_message(session, 100, b"stats")
while reply is None and time.time() < deadline:
    for name, m in sub.receive(100):
        if name == "event":
            events.append(m["payload"])
        if name == "plugin_message":
            reply = m["payload"]
assert events == [b"hello"], events
assert reply == b"seen=2 dropped=1", reply
print("wordfilter: 1 event passed, 1 dropped with its reason, stats answered")
