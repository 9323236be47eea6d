"""A small Hearth client written from docs/protocol.md (version 2) alone.

Uses Debian's python3-zmq and python3-msgpack. Run the examples with
/usr/bin/python3 so that Debian's packages are found.
"""
import msgpack
import zmq

VERSION = 2
IDENTIFY, READY, SUBSCRIBED, EVENTS = 1, 2, 3, 4
HEARTBEAT, HEARTBEAT_ACK, LEAVE, SESSION_CLOSED, ERROR, PLUGIN_MESSAGE = 5, 6, 7, 8, 9, 10
SUBSCRIBE, UNSUBSCRIBE, UNSUBSCRIBED, GUILD_UNAVAILABLE, RESUME = 11, 12, 13, 14, 15
PUBLISH, PUBLISH_ACK, RESUMED, INVALID_SESSION = 16, 17, 18, 19

CODES = {
    0: "OK", 1: "MALFORMED", 2: "UNSUPPORTED_VERSION", 3: "UNKNOWN_TYPE", 4: "TOO_LARGE",
    5: "AUTH_FAILED", 6: "NO_ROUTE", 7: "UNKNOWN_SESSION", 8: "SLOW_CONSUMER",
    9: "OVERLOADED", 10: "SHUTTING_DOWN", 11: "LIMIT", 12: "HEARTBEAT_TIMEOUT",
    13: "CLOSED_BY_CLIENT", 14: "REJECTED", 15: "RESUME_GAP", 16: "OWNER_CHANGED",
    17: "FORBIDDEN",
}

# Messages that carry a session's `seq`: together they form the session's
# stream, numbered 1, 2, 3, ... with no gaps (events are not the only ones).
STREAM_ITEMS = ("event", "subscribed", "unsubscribed", "guild_unavailable")


def _header(*fields):
    return msgpack.packb([VERSION, *fields])


def _code(c):
    return CODES.get(c, c)


def decode(frames):
    """Turns one multipart message into a list of (name, dict) tuples.

    Fields beyond those known here are ignored, and an unknown type becomes
    ("unknown", ...) for the caller to skip: version 2 only grows that way.
    """
    header = msgpack.unpackb(frames[0], raw=False)
    version, kind = header[0], header[1]
    f = header[2:]
    if kind == ERROR:  # the same layout in every version, so always readable
        return [("error", dict(code=_code(f[0]), text=f[1], ref=f[2]))]
    if version != VERSION:
        raise ValueError(f"server speaks protocol version {version}")
    if kind == READY:
        return [("ready", dict(request_id=f[0], session_id=f[1], heartbeat_ms=f[2],
                               resume_token=f[3], resume_grace_ms=f[4]))]
    if kind == SUBSCRIBED:
        return [("subscribed", dict(session_id=f[0], seq=f[1], guild_id=f[2], code=_code(f[3]),
                                    epoch=f[4], guild_seq=f[5], request_id=f[6],
                                    refetch=bool(f[7])))]
    if kind == EVENTS:
        # [session_id, seq, guild_id, kind, epoch, guild_seq, frame, offset, length]:
        # the payload is `length` bytes at `offset` of payload frame `frame`.
        out = []
        for e in f[0]:
            frame, offset, length = e[6], e[7], e[8]
            if not 1 <= frame < len(frames) or offset + length > len(frames[frame]):
                raise ValueError(f"EVENTS entry {e} points outside its payload frames")
            out.append(("event", dict(session_id=e[0], seq=e[1], guild_id=e[2], kind=e[3],
                                      epoch=e[4], guild_seq=e[5],
                                      payload=frames[frame][offset:offset + length])))
        return out
    if kind == UNSUBSCRIBED:
        return [("unsubscribed", dict(session_id=f[0], seq=f[1], guild_id=f[2],
                                      request_id=f[3]))]
    if kind == GUILD_UNAVAILABLE:
        return [("guild_unavailable", dict(session_id=f[0], seq=f[1], guild_id=f[2],
                                           code=_code(f[3])))]
    if kind == RESUMED:
        return [("resumed", dict(request_id=f[0], session_id=f[1], replayed=f[2]))]
    if kind == INVALID_SESSION:
        return [("invalid_session", dict(request_id=f[0], session_id=f[1], code=_code(f[2]),
                                         reason=f[3]))]
    if kind == SESSION_CLOSED:
        return [("closed", dict(session_id=f[0], code=_code(f[1]), reason=f[2]))]
    if kind == HEARTBEAT_ACK:
        return [("heartbeat_ack", dict(nonce=f[0], sessions=f[1]))]
    if kind == PLUGIN_MESSAGE:
        return [("plugin_message", dict(session_id=f[0], kind=f[1], payload=frames[1]))]
    if kind == PUBLISH_ACK:
        return [("publish_ack", dict(ack_id=f[0], guild_id=f[1], guild_seq=f[2], epoch=f[3]))]
    return [("unknown", dict(type=kind))]  # newer server: skip, per the versioning rule


def read_key_file(path):
    """The Z85 key in a NAME.pub or NAME.key file written by `hearth keygen`."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line.encode()
    raise ValueError(f"{path} holds no key")


class Curve:
    """CURVE (docs/security.md): the server's public key and, optionally, this
    client's secret key (NAME.key). Without one, a fresh pair is used: a
    session client authenticates by token; a publisher needs the pair the
    broker lists for it."""

    def __init__(self, server_public_file, own_secret_file=None):
        self.server_public = read_key_file(server_public_file)
        if own_secret_file:
            self.secret = read_key_file(own_secret_file)
            self.public = zmq.curve_public(self.secret)
        else:
            self.public, self.secret = zmq.curve_keypair()

    def apply(self, socket):
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret


class _Connection:
    """A DEALER to a Hearth endpoint; both kinds of client read replies the same way."""

    def __init__(self, endpoint, ctx, linger_ms, curve=None):
        self.endpoint, self.ctx, self.linger_ms = endpoint, ctx or zmq.Context.instance(), linger_ms
        self.curve = curve
        self.socket = self._open()

    def _open(self):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, self.linger_ms)
        if self.curve:
            self.curve.apply(s)
        s.connect(self.endpoint)
        return s

    def reconnect(self):
        """Closes the DEALER and opens a new one to the same endpoint.

        Whatever was queued on the old socket is dropped. The server sees a new
        connection with no sessions: RESUME each session on it.
        """
        self.socket.close(linger=0)
        self.socket = self._open()

    def receive(self, timeout_ms):
        """Messages arriving within timeout_ms, decoded."""
        out = []
        if self.socket.poll(timeout_ms):
            while self.socket.poll(0):
                out.extend(decode(self.socket.recv_multipart()))
        return out

    def heartbeat(self, nonce=0):
        self.socket.send(_header(HEARTBEAT, nonce))


class SessionClient(_Connection):
    def __init__(self, endpoint, ctx=None, curve=None):
        super().__init__(endpoint, ctx, linger_ms=0, curve=curve)

    def identify(self, request_id, user_id, token, guilds, presence=None):
        """presence: optional (status, activity), the session's initial status (docs/presence.md)."""
        fields = [request_id, user_id, token, list(guilds)]
        if presence is not None:
            fields.append(list(presence))
        self.socket.send(_header(IDENTIFY, *fields))

    def leave(self, session_id):
        self.socket.send(_header(LEAVE, session_id))

    def subscribe(self, request_id, session_id, guilds):
        self.socket.send(_header(SUBSCRIBE, request_id, session_id, list(guilds)))

    def unsubscribe(self, request_id, session_id, guilds):
        self.socket.send(_header(UNSUBSCRIBE, request_id, session_id, list(guilds)))

    def resume(self, request_id, session_id, resume_token, last_seq):
        """Continues a session; last_seq is the seq of the last stream item processed."""
        self.socket.send(_header(RESUME, request_id, session_id, bytes(resume_token), last_seq))

    def plugin_message(self, session_id, kind, payload):
        """Sends a message of a kind a plugin registered (answers arrive as plugin_message)."""
        self.socket.send_multipart([_header(PLUGIN_MESSAGE, session_id, kind), payload])


class SendTimeout(Exception):
    """The broker took nothing for send_timeout_ms: it is gone, restarting, or not reading.

    Nothing was sent. Wait and publish again (the publish may then arrive twice
    only if you also resend ones already sent)."""


class Publisher(_Connection):
    def __init__(self, endpoint, ctx=None, send_timeout_ms=5000, curve=None):
        # Back-pressure: ZeroMQ queues 1,000 messages for the broker; past them
        # a send waits, at most this long, and never forever (docs/protocol.md).
        self.send_timeout_ms = send_timeout_ms
        # Linger so that publishes still queued at exit are sent.
        super().__init__(endpoint, ctx, linger_ms=1000, curve=curve)

    def _open(self):
        s = super()._open()
        s.setsockopt(zmq.SNDTIMEO, self.send_timeout_ms)
        return s

    def publish(self, guild_id, kind, payload, ack_id=0):
        """Queues one PUBLISH; raises SendTimeout if ZeroMQ's queue stayed full."""
        try:
            self.socket.send_multipart([_header(PUBLISH, guild_id, kind, ack_id), payload])
        except zmq.Again:
            raise SendTimeout(f"the broker at {self.endpoint} took nothing for "
                              f"{self.send_timeout_ms} ms") from None
