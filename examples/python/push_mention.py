#!/usr/bin/python3
"""Push notifications end to end, against a node with the push plugin:

1. user --user registers a device token through a session in --guild, then
   goes offline (LEAVE);
2. a publisher sends a PUSH_EVENT envelope mentioning that user;
3. the provider receives one FCM-style push for the device.

    /usr/bin/python3 tests/push_sink.py --port 7700 &
    build/hearth all-in-one --plugin push=build/plugins/push/push.so \\
        --plugin-option push.url=http://127.0.0.1:7700/v1/projects/demo/messages:send \\
        --plugin-option push.http=1.1 &
    /usr/bin/python3 examples/python/push_mention.py --sink http://127.0.0.1:7700

docs/push.md has the messages.
"""
import argparse
import json
import time
import urllib.request

import msgpack

from hearth_client import Publisher, SessionClient

REGISTER, RESULT, PUSH_EVENT = 300, 302, 310


def wait_for(client, name, timeout_s=5.0):
    """The first message called `name` within the timeout, or None."""
    end = time.time() + timeout_s
    while time.time() < end:
        for got, m in client.receive(100):
            if got == name:
                return m
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", default="tcp://127.0.0.1:7500", help="session node endpoint")
    p.add_argument("--publishers", default="tcp://127.0.0.1:7400", help="broker publisher endpoint")
    p.add_argument("--sink", help="the provider's base URL, to show what it received")
    p.add_argument("--user", type=int, default=42)
    p.add_argument("--guild", type=int, default=1)
    p.add_argument("--token", default="demo-device-token")
    args = p.parse_args()

    phone = SessionClient(args.sessions)
    phone.identify(1, args.user, "any-token-in-dev-mode", [args.guild])
    ready = wait_for(phone, "ready")
    if not ready:
        print("no READY: is a node with the push plugin listening on", args.sessions)
        return 1
    session = ready["session_id"]
    phone.plugin_message(session, REGISTER, msgpack.packb([args.token]))
    result = wait_for(phone, "plugin_message")
    kind, ok, text = msgpack.unpackb(result["payload"]) if result else (REGISTER, False, "no answer")
    print(f"register {args.token!r}: {text}")
    if not ok:
        return 1
    phone.leave(session)
    wait_for(phone, "closed")
    time.sleep(0.3)  # the guild hears the unsubscribe

    pub = Publisher(args.publishers)
    envelope = msgpack.packb([1, b"you were mentioned", [args.user], "Mentioned", "in guild %d" %
                              args.guild])
    pub.publish(args.guild, PUSH_EVENT, envelope, ack_id=1)
    ack = wait_for(pub, "publish_ack")
    print("published the mention" if ack else "no acknowledgement from the broker")
    if args.sink:
        time.sleep(0.5)
        with urllib.request.urlopen(args.sink + "/requests") as r:
            for push in json.load(r):
                print(f"provider got: token {push['token']}, user {push['user']}, "
                      f"title {push['title']!r}, body {push['body']!r}, HTTP {push['status']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
