"""Attack traffic for test_fair_share.py, run as a subprocess (so that its
descriptors count against its own open file limit, not the test's).

    fair_attack.py HOST PORT --sources A,B,... --dribblers N --silent M
                   [--reconnect] --duration SECONDS

Opens N dribblers (a request line, one byte every --every seconds) and M
silent connections, spread round-robin over the source addresses (each
bound before connect), and keeps them open: with --reconnect a connection
the server closes is opened again at once, as a misbehaving lab machine
would.  Prints "ready" once every connection was started, then a summary
line at the end.  Exits by itself after --duration seconds.
"""
import argparse
import errno
import os
import random
import resource
import select
import socket
import sys
import time

LINE = b"get_metadata " + b"a" * 4096


class Conn:
    __slots__ = ("sock", "src", "dribble", "sent", "due")


def open_conn(host, port, src, dribble, every):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((src, 0))
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return None
    c = Conn()
    c.sock, c.src, c.dribble, c.sent = s, src, dribble, 0
    c.due = time.monotonic() + random.uniform(0, every) if dribble else float("inf")
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--sources", required=True)
    ap.add_argument("--dribblers", type=int, default=0)
    ap.add_argument("--silent", type=int, default=0)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--reconnect", action="store_true")
    ap.add_argument("--duration", type=float, required=True)
    a = ap.parse_args()
    # A real attacker's reconnect loop runs on its own machine; here it
    # shares the server's cores, so it yields them to the server and to
    # the measured client instead of taking a whole core from both.
    os.nice(19)

    total = a.dribblers + a.silent
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, total + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    sources = a.sources.split(",")
    end = time.monotonic() + a.duration
    conns = {}
    poller = select.poll()
    failed = reopened = closed = 0

    def add(i, dribble):
        nonlocal failed
        c = open_conn(a.host, a.port, sources[i % len(sources)], dribble, a.every)
        if c is None:
            failed += 1
            return
        conns[c.sock.fileno()] = c
        poller.register(c.sock.fileno(), select.POLLIN)

    for i in range(total):
        add(i, i < a.dribblers)
    print("ready %d" % len(conns), flush=True)

    while time.monotonic() < end:
        for fd, _ev in poller.poll(200):
            c = conns.pop(fd, None)
            if c is None:
                continue
            poller.unregister(fd)
            try:
                c.sock.recv(4096)
            except OSError:
                pass
            c.sock.close()
            closed += 1
            if a.reconnect and time.monotonic() < end:
                add(sources.index(c.src), c.dribble)
                reopened += 1
        now = time.monotonic()
        for c in list(conns.values()) if a.dribblers else ():
            if c.due > now:
                continue
            c.due = now + a.every
            try:
                c.sock.send(LINE[c.sent % len(LINE):c.sent % len(LINE) + 1])
                c.sent += 1
            except OSError:
                pass
    print("done open=%d closed=%d reopened=%d failed=%d" %
          (len(conns), closed, reopened, failed), flush=True)
    for c in conns.values():
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
