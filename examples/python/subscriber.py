#!/usr/bin/python3
"""Subscribe to guilds and print every event.

    /usr/bin/python3 examples/python/subscriber.py --user 42 --guild 1 --guild 2
"""
import argparse
import time

from hearth_client import SessionClient


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7500", help="session node")
    p.add_argument("--user", type=int, default=1)
    p.add_argument("--token", default="dev-token")
    p.add_argument("--guild", type=int, action="append", required=True)
    p.add_argument("--count", type=int, default=0, help="exit after this many events (0: never)")
    p.add_argument("--timeout", type=float, default=0, help="exit after this many seconds")
    args = p.parse_args()

    client = SessionClient(args.endpoint)
    client.identify(1, args.user, args.token, args.guild)
    heartbeat_ms, last_beat, events, last_seq = 15000, time.time(), 0, {}
    deadline = time.time() + args.timeout if args.timeout else None
    while deadline is None or time.time() < deadline:
        for name, m in client.receive(200):
            if name == "event":
                expected = last_seq.get(m["session_id"], 0) + 1
                if m["seq"] != expected:
                    print(f"GAP: expected seq {expected}, got {m['seq']}")
                last_seq[m["session_id"]] = m["seq"]
                events += 1
                print(f"event seq={m['seq']} guild={m['guild_id']} #{m['guild_seq']} "
                      f"kind={m['kind']} payload={m['payload']!r}", flush=True)
                if args.count and events >= args.count:
                    return 0
            elif name == "ready":
                heartbeat_ms = m["heartbeat_ms"]
                print(f"ready: session {m['session_id']}", flush=True)
            elif name == "subscribed":
                print(f"subscribed: guild {m['guild_id']} ({m['code']})", flush=True)
            elif name in ("closed", "error"):
                print(f"{name}: {m}", flush=True)
                if name == "closed" or m["code"] == "AUTH_FAILED":
                    return 1
        if (time.time() - last_beat) * 1000 > heartbeat_ms / 2:
            client.heartbeat()
            last_beat = time.time()
    return 0 if not args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())
