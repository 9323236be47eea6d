#!/usr/bin/python3
"""Publish events to a guild, each acknowledged with its guild sequence number
and epoch (the pair never repeats; a new epoch means the guild's sequence restarted).

    /usr/bin/python3 examples/python/publisher.py --guild 1 "hello" "world"
"""
import argparse

from hearth_client import Curve, Publisher, SendTimeout


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7400", help="broker publisher endpoint")
    p.add_argument("--guild", type=int, required=True)
    p.add_argument("--kind", type=int, default=1)
    p.add_argument("--send-timeout-ms", type=int, default=5000,
                   help="give up on a publish the broker does not take within this long")
    p.add_argument("messages", nargs="+")
    p.add_argument("--server-key", help="the broker's public key file (broker.pub): publish over CURVE")
    p.add_argument("--key", help="this publisher's secret key file (NAME.key), listed in the broker's --publisher-keys")
    args = p.parse_args()

    pub = Publisher(args.endpoint, send_timeout_ms=args.send_timeout_ms,
                    curve=Curve(args.server_key, args.key) if args.server_key else None)
    for i, text in enumerate(args.messages, start=1):
        try:
            pub.publish(args.guild, args.kind, text.encode(), ack_id=i)
        except SendTimeout as e:
            print(f"not sent: {e}")
            return 1
    pending = set(range(1, len(args.messages) + 1))
    while pending:
        replies = pub.receive(3000)
        if not replies:
            print("no answer from the broker within 3 s")
            return 1
        for name, m in replies:
            if name == "publish_ack":
                print(f"published to guild {m['guild_id']} as #{m['guild_seq']} "
                      f"(epoch {m['epoch']})")
                pending.discard(m["ack_id"])
            elif name == "error":
                print(f"error {m['code']}: {m['text']}")
                pending.discard(m["ref"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
