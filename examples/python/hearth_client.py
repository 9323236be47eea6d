"""A small Hearth client written from docs/protocol.md alone.

Uses Debian's python3-zmq and python3-msgpack. Run the examples with
/usr/bin/python3 so that Debian's packages are found.
"""
import msgpack
import zmq

VERSION = 1
IDENTIFY, READY, SUBSCRIBED, EVENTS = 1, 2, 3, 4
HEARTBEAT, HEARTBEAT_ACK, LEAVE, SESSION_CLOSED, ERROR, PLUGIN_MESSAGE = 5, 6, 7, 8, 9, 10
PUBLISH, PUBLISH_ACK = 16, 17

CODES = {
    0: "OK", 1: "MALFORMED", 2: "UNSUPPORTED_VERSION", 3: "UNKNOWN_TYPE", 4: "TOO_LARGE",
    5: "AUTH_FAILED", 6: "NO_ROUTE", 7: "UNKNOWN_SESSION", 8: "SLOW_CONSUMER",
    9: "OVERLOADED", 10: "SHUTTING_DOWN", 11: "LIMIT", 12: "HEARTBEAT_TIMEOUT",
    13: "CLOSED_BY_CLIENT", 14: "REJECTED",
}


def _header(*fields):
    return msgpack.packb([VERSION, *fields])


def decode(frames):
    """Turns one multipart message into a list of (name, dict) tuples."""
    header = msgpack.unpackb(frames[0], raw=False)
    version, kind = header[0], header[1]
    if version != VERSION:
        raise ValueError(f"server speaks protocol version {version}")
    f = header[2:]
    if kind == READY:
        return [("ready", dict(request_id=f[0], session_id=f[1], heartbeat_ms=f[2]))]
    if kind == SUBSCRIBED:
        return [("subscribed", dict(session_id=f[0], guild_id=f[1], code=CODES.get(f[2], f[2]),
                                    guild_seq=f[3]))]
    if kind == EVENTS:
        # e[5] names the payload frame, e[6] and e[7] the bytes within it.
        return [("event", dict(session_id=e[0], seq=e[1], guild_id=e[2], kind=e[3],
                               guild_seq=e[4], payload=frames[e[5]][e[6]:e[6] + e[7]]))
                for e in f[0]]
    if kind == SESSION_CLOSED:
        return [("closed", dict(session_id=f[0], code=CODES.get(f[1], f[1]), reason=f[2]))]
    if kind == ERROR:
        return [("error", dict(code=CODES.get(f[0], f[0]), text=f[1], ref=f[2]))]
    if kind == HEARTBEAT_ACK:
        return [("heartbeat_ack", dict(nonce=f[0]))]
    if kind == PLUGIN_MESSAGE:
        return [("plugin_message", dict(session_id=f[0], kind=f[1], payload=frames[1]))]
    if kind == PUBLISH_ACK:
        return [("publish_ack", dict(ack_id=f[0], guild_id=f[1], guild_seq=f[2]))]
    return [("unknown", dict(type=kind))]  # newer server: skip, per the versioning rule


class _Connection:
    """A DEALER to a Hearth endpoint; both kinds of client read replies the same way."""

    def __init__(self, endpoint, ctx, linger_ms):
        self.socket = (ctx or zmq.Context.instance()).socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        self.socket.connect(endpoint)

    def receive(self, timeout_ms):
        """Messages arriving within timeout_ms, decoded."""
        out = []
        if self.socket.poll(timeout_ms):
            while self.socket.poll(0):
                out.extend(decode(self.socket.recv_multipart()))
        return out


class SessionClient(_Connection):
    def __init__(self, endpoint, ctx=None):
        super().__init__(endpoint, ctx, linger_ms=0)

    def identify(self, request_id, user_id, token, guilds):
        self.socket.send(_header(IDENTIFY, request_id, user_id, token, list(guilds)))

    def heartbeat(self, nonce=0):
        self.socket.send(_header(HEARTBEAT, nonce))

    def leave(self, session_id):
        self.socket.send(_header(LEAVE, session_id))

    def plugin_message(self, session_id, kind, payload):
        """Sends a message of a kind a plugin registered (answers arrive as plugin_message)."""
        self.socket.send_multipart([_header(PLUGIN_MESSAGE, session_id, kind), payload])


class Publisher(_Connection):
    def __init__(self, endpoint, ctx=None):
        # Linger so that publishes still queued at exit are sent.
        super().__init__(endpoint, ctx, linger_ms=1000)

    def publish(self, guild_id, kind, payload, ack_id=0):
        self.socket.send_multipart([_header(PUBLISH, guild_id, kind, ack_id), payload])
