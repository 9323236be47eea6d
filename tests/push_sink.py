#!/usr/bin/python3
"""A local push provider for tests and benchmarks: a real HTTP server on
127.0.0.1 that accepts FCM HTTP v1 sends over HTTP/2 (cleartext, prior
knowledge) and HTTP/1.1 keep-alive, records them, and can be told to be slow
or to fail.

    push_sink.py --port 7700 [--tls-port 7701 --cert cert.pem --key key.pem
                              [--tls-alpn h2,http/1.1]]

Endpoints (any protocol):
  POST /v1/projects/<p>/messages:send  a push (any other POST path works too)
  POST /control   JSON, every field optional:
                  {"delay_ms": 0, "fail_status": 503, "fail_count": 0,
                   "retry_after": 0 (seconds, sent with failures when > 0),
                   "unregistered": ["token", ...], "reset": true}
  GET  /stats     JSON: count, ok, by_status, connections and protocols (of
                  connections that carried pushes), max_in_flight (per
                  connection), max_total_in_flight
  GET  /requests?from=N   JSON list of recorded pushes from index N:
                  {token, guild, kind, user, payload, title, body, auth,
                   conn, protocol, status, headers ("name: value" lines),
                   t (when it was answered, seconds since the epoch)}
  --report        a line a second on stdout while pushes arrive
  GET  /stats.msgpack, /requests.msgpack?from=N   the same in MessagePack
                  (stats flattened; requests as arrays in that field order)
Prints "push sink listening on PORT" when ready.
"""
import argparse
import asyncio
import json
import ssl
import sys
import time

import h2.config
import msgpack
import h2.connection
import h2.events
import h2.settings

RECORD_FIELDS = ["token", "guild", "kind", "user", "payload", "title", "body", "auth",
                 "conn", "protocol", "status", "headers", "t"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Sink:
    def __init__(self):
        self.reset()

    def reset(self):
        self.delay_ms = 0
        self.fail_status = 503
        self.fail_count = 0
        self.retry_after = 0
        self.unregistered = set()
        self.records = []
        self.by_status = {}
        self.connections = 0
        self.protocols = {}
        self.max_in_flight = 0
        self.total_in_flight = 0
        self.max_total_in_flight = 0

    def stats(self):
        return {
            "count": len(self.records),
            "ok": self.by_status.get("200", 0),
            "by_status": self.by_status,
            "connections": self.connections,
            "max_in_flight": self.max_in_flight,
            "max_total_in_flight": self.max_total_in_flight,
            "protocols": self.protocols,
        }

    def control(self, body):
        c = json.loads(body or b"{}")
        if c.get("reset"):
            self.reset()
        self.delay_ms = c.get("delay_ms", self.delay_ms)
        self.fail_status = c.get("fail_status", self.fail_status)
        self.fail_count = c.get("fail_count", self.fail_count)
        self.retry_after = c.get("retry_after", self.retry_after)
        self.unregistered |= set(c.get("unregistered", []))
        return 200, b'{"ok":true}'

    async def handle(self, conn, method, path, headers, body):
        """Returns (status, body bytes)."""
        if method == "GET" and path == "/stats":
            return 200, json.dumps(self.stats()).encode()
        if method == "GET" and path == "/stats.msgpack":  # flat, for C++ tests
            flat = {k: v for k, v in self.stats().items() if isinstance(v, int)}
            flat.update({"status_" + k: v for k, v in self.by_status.items()})
            flat.update({"protocol_" + k: v for k, v in self.protocols.items()})
            return 200, msgpack.packb(flat)
        if method == "GET" and path.startswith("/requests"):
            start = int(path.split("from=")[1]) if "from=" in path else 0
            if path.startswith("/requests.msgpack"):  # arrays, in RECORD_FIELDS order
                return 200, msgpack.packb(
                    [[r.get(f, "") for f in RECORD_FIELDS] for r in self.records[start:]])
            return 200, json.dumps(self.records[start:]).encode()
        if method == "POST" and path == "/control":
            return self.control(body)
        if method != "POST":
            return 405, b'{"error":{"code":405}}'
        if not conn.carried_pushes:  # connections and protocols count push connections only
            conn.carried_pushes = True
            self.connections += 1
            self.protocols[conn.protocol] = self.protocols.get(conn.protocol, 0) + 1
        conn.in_flight += 1
        self.total_in_flight += 1
        self.max_in_flight = max(self.max_in_flight, conn.in_flight)
        self.max_total_in_flight = max(self.max_total_in_flight, self.total_in_flight)
        try:
            if self.delay_ms:
                await asyncio.sleep(self.delay_ms / 1000.0)
            return self.push(conn, headers, body)
        finally:
            conn.in_flight -= 1
            self.total_in_flight -= 1

    def retrying(self, status):
        """Whether an answer carries Retry-After (429 and 5xx, when configured)."""
        return self.retry_after > 0 and (status == 429 or status >= 500)

    def push(self, conn, headers, body):
        record = {"conn": conn.id, "protocol": conn.protocol,
                  "auth": headers.get("authorization", ""), "t": time.time(),
                  "headers": "\n".join("%s: %s" % (k, v) for k, v in sorted(headers.items())
                                       if not k.startswith(":"))}
        try:
            msg = json.loads(body)["message"]
            data = msg.get("data", {})
            note = msg.get("notification", {})
            record.update(token=msg["token"], guild=int(data["guild"]),
                          kind=int(data["kind"]), user=int(data["user"]),
                          payload=data.get("payload", ""),
                          title=note.get("title", ""), body=note.get("body", ""))
        except (ValueError, KeyError, TypeError) as e:
            status, answer = 400, json.dumps(
                {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                           "message": "bad request: %s" % e}}).encode()
        else:
            if record["token"] in self.unregistered:
                status, answer = 404, (
                    b'{"error":{"code":404,"status":"NOT_FOUND","details":'
                    b'[{"errorCode":"UNREGISTERED"}]}}')
            elif self.fail_count > 0:
                self.fail_count -= 1
                status, answer = self.fail_status, b'{"error":{"code":%d}}' % self.fail_status
            else:
                status = 200
                answer = b'{"name":"projects/sink/messages/%d"}' % len(self.records)
        record["status"] = status
        self.records.append(record)
        key = str(status)
        self.by_status[key] = self.by_status.get(key, 0) + 1
        return status, answer


class Connection(asyncio.Protocol):
    next_id = 0

    def __init__(self, sink):
        self.sink = sink
        self.buffer = b""
        self.protocol = None
        self.in_flight = 0
        self.carried_pushes = False
        Connection.next_id += 1
        self.id = Connection.next_id

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if getattr(self, "http1_task", None):
            self.http1_task.cancel()

    def data_received(self, data):
        if self.protocol is None:
            self.buffer += data
            if len(self.buffer) < len(PREFACE) and PREFACE.startswith(self.buffer):
                return
            self.protocol = "h2" if self.buffer.startswith(PREFACE) else "http/1.1"
            if self.protocol == "h2":
                self.start_h2()
            data, self.buffer = self.buffer, b""
            if self.protocol == "http/1.1":
                self.http1_queue = asyncio.Queue()
                self.http1_task = asyncio.ensure_future(self.http1_loop())
        if self.protocol == "h2":
            self.h2_received(data)
        else:
            self.buffer += data
            self.http1_parse()

    # ---- HTTP/2 ----
    def start_h2(self):
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.initiate_connection()
        # Far above any client window under test: the client's limit is what is measured.
        self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 10000})
        self.streams = {}
        self.transport.write(self.h2.data_to_send())

    def h2_received(self, data):
        try:
            events = self.h2.receive_data(data)
        except Exception as e:  # a protocol error: drop the connection
            print("h2 connection %d: %r" % (self.id, e), file=sys.stderr, flush=True)
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = (dict(ev.headers), bytearray())
            elif isinstance(ev, h2.events.DataReceived):
                self.streams[ev.stream_id][1].extend(ev.data)
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                headers, body = self.streams.pop(ev.stream_id)
                asyncio.ensure_future(self.h2_answer(ev.stream_id, headers, bytes(body)))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.h2.data_to_send())

    async def h2_answer(self, stream_id, headers, body):
        status, answer = await self.sink.handle(
            self, headers.get(":method"), headers.get(":path"), headers, body)
        if self.transport.is_closing():
            return
        extra = [("retry-after", str(self.sink.retry_after))] if self.sink.retrying(status) else []
        self.h2.send_headers(stream_id, [(":status", str(status)),
                                         ("content-type", "application/json"),
                                         ("content-length", str(len(answer)))] + extra)
        self.h2.send_data(stream_id, answer, end_stream=True)
        self.transport.write(self.h2.data_to_send())

    # ---- HTTP/1.1 keep-alive, one request at a time ----
    def http1_parse(self):
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self.http1_queue.put_nowait((method, path, headers, body))

    async def http1_loop(self):
        try:
            await self.http1_serve()
        except asyncio.CancelledError:
            pass

    async def http1_serve(self):
        while not self.transport.is_closing():
            method, path, headers, body = await self.http1_queue.get()
            status, answer = await self.sink.handle(self, method, path, headers, body)
            if self.transport.is_closing():
                return
            extra = (b"Retry-After: %d\r\n" % self.sink.retry_after
                     if self.sink.retrying(status) else b"")
            self.transport.write(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                % (status, len(answer), extra) + answer)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="cleartext (h2c or HTTP/1.1)")
    parser.add_argument("--tls-port", type=int, help="TLS, ALPN h2 or http/1.1 (needs --cert)")
    parser.add_argument("--cert", help="PEM certificate chain for --tls-port")
    parser.add_argument("--key", help="PEM private key for --tls-port")
    parser.add_argument("--report", action="store_true",
                        help="print a line per second with the pushes received (the demo)")
    parser.add_argument("--tls-alpn", default="h2,http/1.1",
                        help="protocols offered in ALPN (http/1.1 alone: a provider without h2)")
    args = parser.parse_args()
    sink = Sink()
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: Connection(sink), "127.0.0.1", args.port,
                                        backlog=1024)]
    if args.tls_port:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        tls.set_alpn_protocols(args.tls_alpn.split(","))
        servers.append(await loop.create_server(lambda: Connection(sink), "127.0.0.1",
                                                args.tls_port, ssl=tls, backlog=1024))
    print("push sink listening on %d%s" % (
        args.port, " and TLS on %d" % args.tls_port if args.tls_port else ""), flush=True)
    tasks = [s.serve_forever() for s in servers]
    if args.report:
        tasks.append(report(sink))
    await asyncio.gather(*tasks)


async def report(sink):
    """One line a second while pushes arrive."""
    last = 0
    while True:
        await asyncio.sleep(1.0)
        count = len(sink.records)
        if count != last:
            newest = sink.records[-1]
            print("push provider: %d pushes/s | total %d, %d answered 200 | %d connection(s) | "
                  "latest: user %s, %r" % (count - last, count, sink.by_status.get("200", 0),
                                           sink.connections, newest.get("user"),
                                           newest.get("body")), flush=True)
            last = count


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
