#!/usr/bin/python3
"""Measures the memory bounds of docs/reliability.md ("Memory bounds") on real processes.

1. Stopped readers: a broker and a node; N clients identify on one guild and
   stop reading; one client keeps reading; 4 KiB events flood the guild.
   Prints the node's RSS before, its peak (VmHWM) and after, what the healthy
   client received, and how each stopped client's sessions ended.
2. Oversized publishes: 10 MB PUBLISHes at full speed; prints the answers
   and the broker's RSS before, at peak and after.

    /usr/bin/python3 scripts/memory_bounds.py --hearth build/hearth --port 21000
"""
import argparse
import os
import subprocess
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "python"))
from hearth_client import Publisher, SessionClient  # noqa: E402

MiB = 1 << 20


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def start(hearth, args, log):
    return subprocess.Popen([hearth, *args, "--log-level", "warn"], stdout=log, stderr=log)


def wait_subscribed(client, want, timeout=10):
    got, end = [], time.monotonic() + timeout
    while len([m for m in got if m[0] == "subscribed"]) < want and time.monotonic() < end:
        got += client.receive(100)
    return got


def stopped_readers(a, ctx):
    ep = lambda p: f"tcp://127.0.0.1:{p}"  # noqa: E731
    log = open("/tmp/memory_bounds_readers.log", "w")
    broker = start(a.hearth, ["broker", "--frontend", ep(a.port), "--backend", ep(a.port + 1)], log)
    node = start(a.hearth, ["node", "--name", "n1", "--broker", ep(a.port + 1), "--listen", ep(a.port + 2),
                            "--shards", "2", *a.node_args], log)
    try:
        time.sleep(1.0)
        healthy = SessionClient(ep(a.port + 2), ctx)
        healthy.identify(1, 1, "t", [9])
        assert wait_subscribed(healthy, 1), "healthy client never subscribed"
        stopped = []
        for i in range(a.readers):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.RCVHWM, 2)
            s.setsockopt(zmq.RCVBUF, 64 << 10)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ep(a.port + 2))
            s.send(msgpack.packb([2, 1, 1, 100 + i, "t", [9]]))
            for _ in range(2):  # READY, SUBSCRIBED; then it stops reading
                assert s.poll(10000), "a stopped reader got no READY/SUBSCRIBED"
                s.recv_multipart()
            stopped.append(s)
        time.sleep(0.3)
        before = status(node.pid, "VmRSS")
        pub = Publisher(ep(a.port), ctx)
        payload = bytearray(4096)
        received, last, t0 = 0, -1, time.monotonic()
        in_order = True
        for i in range(a.events):
            payload[0:4] = i.to_bytes(4, "little")
            pub.publish(9, 1, bytes(payload))
            if i % 50 == 49:
                while received + 400 < i:
                    for name, m in healthy.receive(5):
                        if name == "event":
                            n = int.from_bytes(m["payload"][0:4], "little")
                            in_order &= n == last + 1
                            last, received = n, received + 1
        end = time.monotonic() + 30
        while received < a.events and time.monotonic() < end:
            for name, m in healthy.receive(50):
                if name == "event":
                    n = int.from_bytes(m["payload"][0:4], "little")
                    in_order &= n == last + 1
                    last, received = n, received + 1
        elapsed = time.monotonic() - t0
        peak, after = status(node.pid, "VmHWM"), status(node.pid, "VmRSS")
        codes = []
        for s in stopped:
            code, end = None, time.monotonic() + 20
            while code is None and time.monotonic() < end:
                if not s.poll(100):
                    continue
                h = msgpack.unpackb(s.recv_multipart()[0])
                if h[1] == 8:
                    code = h[3]
            codes.append(code)
        print(f"stopped readers: {a.readers}, events: {a.events} x 4 KiB in {elapsed:.1f} s")
        print(f"  node RSS before {before // MiB} MiB, peak {peak // MiB} MiB, after {after // MiB} MiB")
        print(f"  healthy client: {received} events, in order: {in_order}")
        print(f"  stopped readers' SESSION_CLOSED codes: {codes} (8 = SLOW_CONSUMER, None = none within 20 s)")
        for s in stopped:
            s.close()
        time.sleep(1.0)
        print(f"  node RSS once the stopped readers read to SESSION_CLOSED and disconnected: "
              f"{status(node.pid, 'VmRSS') // MiB} MiB")
        healthy.socket.close()
        pub.socket.close()
    finally:
        for p in (node, broker):
            p.terminate()
            p.wait()


def big_publishes(a, ctx):
    ep = lambda p: f"tcp://127.0.0.1:{p}"  # noqa: E731
    log = open("/tmp/memory_bounds_big.log", "w")
    broker = start(a.hearth, ["broker", "--frontend", ep(a.port + 3), "--backend", ep(a.port + 4)], log)
    node = start(a.hearth, ["node", "--name", "n1", "--broker", ep(a.port + 4), "--listen", ep(a.port + 5),
                            "--shards", "1"], log)
    try:
        time.sleep(1.0)
        pub = Publisher(ep(a.port + 3), ctx)
        pub.publish(1, 1, b"warm", ack_id=1)
        pub.receive(3000)
        before = status(broker.pid, "VmRSS")
        big = b"x" * 10_000_000
        t0 = time.monotonic()
        answers = {}
        for i in range(a.big):
            pub.publish(1, 1, big, ack_id=100 + i)
            for name, m in pub.receive(0):
                answers[name if name != "error" else m["code"]] = answers.get(
                    name if name != "error" else m["code"], 0) + 1
        end = time.monotonic() + 30
        while sum(answers.values()) < a.big and time.monotonic() < end:
            for name, m in pub.receive(100):
                key = name if name != "error" else m["code"]
                answers[key] = answers.get(key, 0) + 1
        elapsed = time.monotonic() - t0
        peak, after = status(broker.pid, "VmHWM"), status(broker.pid, "VmRSS")
        print(f"10 MB publishes: {a.big} in {elapsed:.1f} s, answers {answers}")
        print(f"  broker RSS before {before // MiB} MiB, peak {peak // MiB} MiB, after {after // MiB} MiB"
              f"{'' if broker.poll() is None else ' (broker exited)'}")
        pub.socket.close()
    finally:
        for p in (node, broker):
            p.terminate()
            p.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hearth", default="build/hearth")
    p.add_argument("--port", type=int, default=21000, help="uses this port and the next 5")
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--big", type=int, default=60)
    p.add_argument("--node-args", nargs=argparse.REMAINDER, default=[],
                   help="further options for the session node (last on the line)")
    a = p.parse_args()
    ctx = zmq.Context()
    stopped_readers(a, ctx)
    big_publishes(a, ctx)


if __name__ == "__main__":
    main()
