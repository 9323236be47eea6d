#!/usr/bin/python3
"""Subscribe to guilds and print every event, resuming after a dropped connection.

    /usr/bin/python3 examples/python/subscriber.py --user 42 --guild 1 --guild 2

The pattern to copy (docs/protocol.md, "HEARTBEAT" and "RESUME"):
- heartbeat every second and read HEARTBEAT_ACK's `sessions`: fewer than we
  hold (with no IDENTIFY or RESUME unanswered) means the node no longer has
  our session on this connection, so RESUME it with the last seq processed;
- no answer at all for a while means the connection is dead: open a fresh
  socket and RESUME there; an IDENTIFY or RESUME unanswered for as long was
  lost with a connection: send it again;
- after INVALID_SESSION or SESSION_CLOSED the session is gone: IDENTIFY again
  (a new session, with SUBSCRIBED for every guild: reload guild state).
"""
import argparse
import time

from hearth_client import STREAM_ITEMS, Curve, SessionClient

HEARTBEAT_S = 1.0  # well within READY's heartbeat_ms; detects a detached session quickly
DEAD_AFTER_S = 5.0  # nothing heard for this long: the connection is gone


class Session:
    """One session's state: what a RESUME needs, and the stream position."""

    def __init__(self, client, user, token, guilds):
        self.client, self.user, self.token, self.guilds = client, user, token, guilds
        self.session_id = None
        self.resume_token = None
        self.last_seq = 0  # seq of the last stream item processed
        self.pending = None  # request id of an IDENTIFY or RESUME awaiting its answer
        self.pending_since = 0.0
        self.next_request = 1

    def _request(self):
        self.pending, self.next_request = self.next_request, self.next_request + 1
        self.pending_since = time.time()
        return self.pending

    def identify(self):
        self.session_id, self.resume_token, self.last_seq = None, None, 0
        self.client.identify(self._request(), self.user, self.token, self.guilds)

    def resume_or_identify(self):
        if self.session_id is None:
            self.identify()
        else:
            print(f"resuming session {self.session_id} after seq {self.last_seq}", flush=True)
            self.client.resume(self._request(), self.session_id, self.resume_token, self.last_seq)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7500", help="session node")
    p.add_argument("--user", type=int, default=1)
    p.add_argument("--token", default="dev-token")
    p.add_argument("--guild", type=int, action="append", required=True)
    p.add_argument("--count", type=int, default=0, help="exit after this many events (0: never)")
    p.add_argument("--timeout", type=float, default=0, help="exit after this many seconds")
    p.add_argument("--server-key", help="the session node's public key file (NAME.pub): connect over CURVE")
    p.add_argument("--key", help="this client's secret key file (optional: a fresh pair is used without it)")
    args = p.parse_args()

    client = SessionClient(args.endpoint,
        curve=Curve(args.server_key, args.key) if args.server_key else None)
    s = Session(client, args.user, args.token, args.guild)
    s.identify()
    events, nonce = 0, 0
    last_beat = last_heard = time.time()
    deadline = time.time() + args.timeout if args.timeout else None
    while deadline is None or time.time() < deadline:
        messages = client.receive(200)
        if messages:
            last_heard = time.time()
        for name, m in messages:
            if name in STREAM_ITEMS:
                if m["session_id"] != s.session_id:
                    continue  # a session we gave up on
                if m["seq"] != s.last_seq + 1:
                    print(f"GAP: expected seq {s.last_seq + 1}, got {m['seq']}", flush=True)
                s.last_seq = m["seq"]
            if name == "event":
                events += 1
                print(f"event seq={m['seq']} guild={m['guild_id']} #{m['guild_seq']} "
                      f"kind={m['kind']} payload={m['payload']!r}", flush=True)
                if args.count and events >= args.count:
                    return 0
            elif name == "subscribed":
                note = " (refetch: reload this guild's state)" if m["refetch"] else ""
                print(f"subscribed: guild {m['guild_id']} ({m['code']}){note}", flush=True)
            elif name == "guild_unavailable":
                print(f"guild {m['guild_id']} unavailable ({m['code']}); the node re-subscribes",
                      flush=True)
            elif name == "ready" and m["request_id"] == s.pending:
                s.pending, s.session_id, s.resume_token = None, m["session_id"], m["resume_token"]
                print(f"ready: session {s.session_id}", flush=True)
            elif name == "resumed" and m["request_id"] == s.pending:
                s.pending = None
                print(f"resumed: session {m['session_id']}, {m['replayed']} item(s) replayed",
                      flush=True)
            elif name == "invalid_session" and m["request_id"] == s.pending:
                print(f"invalid session: {m['code']} {m['reason']}; identifying again", flush=True)
                s.identify()
            elif name == "closed" and m["session_id"] == s.session_id:
                print(f"closed: {m['code']} {m['reason']}; identifying again", flush=True)
                s.identify()
            elif name == "heartbeat_ack":
                if s.pending is None and s.session_id is not None and m["sessions"] < 1:
                    s.resume_or_identify()  # the node sees a new connection: same socket
            elif name == "error":
                print(f"error: {m}", flush=True)
                if m["ref"] == s.pending and m["ref"] != 0:
                    return 1  # IDENTIFY refused (AUTH_FAILED, REJECTED, ...)
        now = time.time()
        if now - last_heard > DEAD_AFTER_S:
            print("no answer from the node: reconnecting", flush=True)
            client.reconnect()
            s.resume_or_identify()
            last_heard = now
        elif s.pending is not None and now - s.pending_since > DEAD_AFTER_S:
            print(f"no answer to request {s.pending}: sending it again", flush=True)
            s.resume_or_identify()
        if now - last_beat >= HEARTBEAT_S:
            nonce += 1
            client.heartbeat(nonce)
            last_beat = now
    return 0 if not args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())
