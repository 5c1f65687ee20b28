"""Pipelining, concurrency, slow readers, worker limits and the
master/worker process structure."""

import base64
import hashlib
import os
import random
import signal
import socket
import threading
import time

import pytest

from conftest import (ASAN, HELP_RESPONSE, OK, SCALE, ST, VALGRIND,
                      WORKED_EXAMPLE, assert_usable, children_of,
                      process_alive, socket_inodes_of, tcp_connections,
                      wait_for, wait_workers_of, worker_of_connection)
import hftp

DATA = random.Random(7).randbytes(4 << 20)


def expected_for(req):
    """The exact response bytes for a request against {ten.txt, data}."""
    files = {b"ten.txt": b"0123456789", b"data": DATA}
    parts = req.split(b" ")
    if parts == [b"help"]:
        return HELP_RESPONSE
    if parts == [b"get_file_listing"]:
        return b"0 OK\r\ndata\r\nten.txt\r\n\r\n"
    if parts[0] == b"get_metadata":
        if parts[1] not in files:
            return ST[202]
        return b"0 OK\r\n%d\r\n" % len(files[parts[1]])
    if parts[0] == b"get_slice":
        if not (parts[2].isdigit() and parts[3].isdigit()):
            return ST[201]
        f = files.get(parts[1])
        if f is None:
            return ST[202]
        off, size = int(parts[2]), int(parts[3])
        if off + size > len(f):
            return ST[203]
        body = f[off:off + size]
        if len(parts) == 5:
            return b"0 OK\r\nContent-Length: %d\r\n\r\n" % size + body
        return OK + base64.b64encode(body) + b"\r\n"
    if parts[0] == b"bogus":
        return ST[200]
    return ST[201]


def random_requests(rng, n, max_size=4096):
    out = []
    for _ in range(n):
        k = rng.randrange(9)
        if k == 0:
            out.append(b"help")
        elif k == 1:
            out.append(b"get_file_listing")
        elif k == 2:
            out.append(b"get_metadata " + rng.choice([b"ten.txt", b"data", b"nope"]))
        elif k == 3:
            out.append(b"bogus")
        elif k == 4:
            out.append(b"get_slice data x 1")
        elif k == 5:
            out.append(b"get_slice ten.txt %d %d" % (rng.randrange(12), rng.randrange(4)))
        else:
            off = rng.randrange(len(DATA))
            size = rng.randrange(max_size)
            out.append(b"get_slice data %d %d%s" % (off, size,
                                                   b" raw" if k == 6 else b""))
    return out


@pytest.fixture
def data_server(hftpd):
    return hftpd(files={"ten.txt": b"0123456789", "data": DATA})


def send_in_thread(c, data):
    err = []

    def run():
        try:
            c.send_raw(data)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, err


def test_pipelining_in_order(data_server):
    rng = random.Random(1)
    reqs = random_requests(rng, 500)
    want = b"".join(expected_for(r) for r in reqs)
    c = data_server.client(timeout=20 * SCALE)
    t, err = send_in_thread(c, b"".join(r + b"\r\n" for r in reqs))
    got = c.read_at_most(len(want))
    t.join()
    assert not err
    assert len(got) == len(want)
    assert got == want
    assert_usable(c)


def test_pipelining_backpressure_nothing_dropped(data_server):
    # Far more owed bytes than the server buffers for one client: it must
    # stop reading requests until they drain, and drop nothing.
    reqs = [b"get_slice data %d 65536 raw" % (i * 1000) for i in range(400)]
    want = b"".join(expected_for(r) for r in reqs)
    c = data_server.client(timeout=20 * SCALE)
    t, err = send_in_thread(c, b"".join(r + b"\r\n" for r in reqs) + b"quit\r\n")
    time.sleep(0.5)             # let the server hit its bound
    got = c.read_at_most(len(want) + len(OK))
    t.join(10 * SCALE)
    assert not err
    assert got == want + OK
    assert c.at_eof()


def test_one_send_many_small_requests(data_server):
    c = data_server.client()
    c.send_raw(b"help\r\n" * 300 + b"get_metadata ten.txt\r\n")
    want = HELP_RESPONSE * 300 + b"0 OK\r\n10\r\n"
    assert c.read_at_most(len(want)) == want


@pytest.mark.slow
def test_50_concurrent_clients(hftpd):
    srv = hftpd(files={"data": DATA}, workers=4)
    errors, done = [], []

    def one(i):
        try:
            rng = random.Random(i)
            with hftp.Client(srv.host, srv.port, timeout=30) as c:
                assert c.metadata("data") == len(DATA)
                for j in range(6):
                    off = rng.randrange(len(DATA) - 300000)
                    size = rng.randrange(1, 300000)
                    got = c.slice("data", off, size, raw=bool(j % 2))
                    assert got == DATA[off:off + size], (i, j, off, size)
            done.append(i)
        except Exception as e:      # reported below with the client number
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert sorted(done) == list(range(50))


def test_concurrent_clients_small(hftpd):
    # A lighter version of the 50-client test that also runs under valgrind.
    srv = hftpd(files={"data": DATA}, workers=2)
    errors = []

    def one(i):
        try:
            with hftp.Client(srv.host, srv.port, timeout=30 * SCALE) as c:
                off = i * 1000
                assert c.slice("data", off, 5000, raw=bool(i % 2)) == DATA[off:off + 5000]
        except Exception as e:
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * SCALE)
    assert not errors


def test_quiet_clients_served_while_others_are_busy(hftpd):
    # A client quiet for a couple of seconds leaves the poll set that a busy
    # worker polls every turn (worker.c: hot and cold clients).  It must
    # still be seen while the worker is busy: its requests answered in
    # order, requests arriving in pieces assembled, its hang-up noticed.
    srv = hftpd(files={"ten.txt": b"0123456789", "data": DATA}, workers=1)
    worker = srv.wait_workers(1)[0]
    quiet = [srv.client(timeout=10 * SCALE) for _ in range(90)]
    for c in quiet[::2]:
        assert c.metadata("ten.txt") == 10
    # The channel and the 90 clients, once every hand-off has arrived (a
    # connected client may not have reached the worker yet).
    sockets_before = 1 + 90
    assert wait_for(lambda: len(socket_inodes_of(worker)) == sockets_before,
                    10 * SCALE), len(socket_inodes_of(worker))
    time.sleep(3.5)     # quiet for 2 s makes a client cold; swept each second
    stop = threading.Event()
    busy_done, busy_errors = [0], []

    def busy():
        try:
            with hftp.Client(srv.host, srv.port, timeout=10 * SCALE) as b:
                while not stop.is_set():
                    assert b.metadata("ten.txt") == 10
                    busy_done[0] += 1
        except Exception as e:      # reported below
            busy_errors.append(repr(e))

    t = threading.Thread(target=busy)
    t.start()
    try:
        assert wait_for(lambda: busy_done[0] >= 50 or busy_errors,
                        10 * SCALE) and not busy_errors, busy_errors
        pipelined = b"get_slice data 5 1000\r\nget_metadata ten.txt\r\n"
        for i, c in enumerate(quiet):
            if i % 3 == 0:
                c.close()
            elif i % 3 == 1:
                c.send_raw(pipelined)
            else:
                c.send_raw(b"get_meta")
        time.sleep(0.05)
        for c in quiet[2::3]:
            c.send_raw(b"data data\r\n")
        want_pipelined = (expected_for(b"get_slice data 5 1000")
                          + expected_for(b"get_metadata ten.txt"))
        want_pieces = b"0 OK\r\n%d\r\n" % len(DATA)
        for i, c in enumerate(quiet):
            if i % 3 == 1:
                assert c.read_exact(len(want_pipelined)) == want_pipelined, i
            elif i % 3 == 2:
                assert c.read_exact(len(want_pieces)) == want_pieces, i
        # The 30 that hung up are closed by the worker: the busy client
        # came, 30 left.
        assert wait_for(lambda: len(socket_inodes_of(worker))
                        == sockets_before + 1 - 30, 10 * SCALE), (
            sockets_before, len(socket_inodes_of(worker)))
    finally:
        stop.set()
        t.join(30 * SCALE)
    assert not busy_errors, busy_errors
    for c in quiet[1::3] + quiet[2::3]:
        assert_usable(c)


def worker_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_stalled_reader_does_not_stall_others(hftpd):
    srv = hftpd(files={"ten.txt": b"0123456789", "data": DATA}, workers=1)
    huge = srv.directory / "huge"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)                 # 1 GiB, sparse: all zeros
    (worker,) = srv.wait_workers(1)
    rss_before = worker_rss_kib(worker)
    stalled = srv.client(timeout=10 * SCALE)
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stalled.send_raw(b"get_slice huge 0 %d raw\r\n" % (1 << 30))
    stalled.send_raw(b"get_slice huge 0 %d\r\n" % (1 << 30))
    time.sleep(0.3)
    for _ in range(3):
        c = srv.client(timeout=2 * SCALE)
        t0 = time.monotonic()
        assert c.help()[0] == "get_file_listing"
        assert c.metadata("huge") == 1 << 30
        assert c.slice("data", 1000, 200000) == DATA[1000:201000]
        assert c.slice("data", 0, 100000, raw=True) == DATA[:100000]
        assert time.monotonic() - t0 < 1.0 * SCALE
        c.quit()
    if not (VALGRIND or ASAN):
        # The worker streams: it does not hold the 1 GiB (or 1.3 GiB of
        # base64) slice in memory.
        grown = worker_rss_kib(worker) - rss_before
        assert grown < 64 * 1024, "worker RSS grew by %d KiB" % grown
    # The stalled client then gets intact data.
    assert stalled.read_exact(len(b"0 OK\r\nContent-Length: 1073741824\r\n\r\n")) \
        == b"0 OK\r\nContent-Length: 1073741824\r\n\r\n"
    assert stalled.read_exact(4 << 20) == bytes(4 << 20)
    stalled.close()
    c = srv.client(timeout=2 * SCALE)
    assert c.metadata("ten.txt") == 10


def test_clients_per_worker_limit_queues_not_refuses(hftpd):
    # request_min_rate 0: a line paused mid-way is never closed to make
    # room (with a rate, one crawling far below it is: test_fair_share.py)
    srv = hftpd(workers=1, args=["-n", "2"], config={"request_min_rate": "0"})
    conns = []
    for i in range(5):
        s = socket.create_connection((srv.host, srv.port), timeout=5 * SCALE)
        s.sendall(b"help\r\n")
        conns.append(s)
        time.sleep(0.05)

    def served(s, wait):
        s.settimeout(wait)
        buf = b""
        try:
            while len(buf) < len(HELP_RESPONSE):
                d = s.recv(4096)
                if not d:
                    break
                buf += d
        except socket.timeout:
            if buf:
                raise AssertionError("partial response %r" % buf)
            return False
        assert buf == HELP_RESPONSE
        # Mid-request from now on: a full worker closes idle clients to
        # make room, never one in the middle of a request (without a
        # request_min_rate to judge it by).
        s.sendall(b"get_metadata ten")
        return True

    pending = list(range(5))
    done = []
    # Two slots: the first two connections are served, the rest wait.
    for i in list(pending):
        if served(conns[i], 2 * SCALE if i < 2 else 0.5):
            pending.remove(i)
            done.append(i)
    assert len(done) == 2, "served at once: %s (expected 2 with -n 2)" % done
    while pending:
        q = done.pop(0)
        conns[q].sendall(b".txt\r\nquit\r\n")
        want = b"0 OK\r\n10\r\n" + OK
        assert recv_exactly(conns[q], len(want)) == want
        conns[q].close()
        deadline = time.monotonic() + 5 * SCALE
        newly = []
        while not newly and time.monotonic() < deadline:
            for i in list(pending):
                if served(conns[i], 0.1):
                    pending.remove(i)
                    newly.append(i)
        assert len(newly) == 1, "after a quit, %s were served" % newly
        done += newly
    for i in done:
        conns[i].sendall(b".txt\r\n")
        assert recv_exactly(conns[i], 10) == b"0 OK\r\n10\r\n"
        conns[i].close()


def recv_exactly(s, n):
    s.settimeout(5 * SCALE)
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def server_conn_inodes(srv, n, timeout=5):
    return wait_for(lambda: (lambda cs: cs if len(cs) >= n else None)(
        tcp_connections(srv.port)), timeout * SCALE) or tcp_connections(srv.port)


def server_socket_timers(port):
    """The timer field ("tr:when") of the server side of each established
    connection on port, from /proc/net/tcp{,6}."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                p = line.split()
                if int(p[1].rsplit(":", 1)[1], 16) == port and p[3] == "01":
                    out.append(p[5])
    return out


def test_client_sockets_have_keepalive(hftpd):
    # The listener's SO_KEEPALIVE (and TCP_NODELAY) are inherited by every
    # accepted socket; an idle connection then runs the keepalive timer
    # (timer 2 in /proc/net/tcp), so peers that vanish are found.
    srv = hftpd(workers=1)
    c = srv.client()
    assert c.metadata("ten.txt") == 10
    assert wait_for(lambda: (lambda t: t if len(t) == 1 and
                             t[0].startswith("02:") else None)(
        server_socket_timers(srv.port)), 5 * SCALE), \
        server_socket_timers(srv.port)


def test_client_fds_live_in_workers_not_master(hftpd):
    srv = hftpd(workers=2)
    workers = srv.wait_workers(2)
    # One listener and one channel per worker.  A worker's pid shows up the
    # moment it is forked, a moment before the master closes the child's end
    # of the socketpair, so wait for the settled count rather than sample it.
    master_socks_before = 1 + 2
    assert wait_for(lambda: len(socket_inodes_of(srv.pid))
                    == master_socks_before, 5 * SCALE), \
        socket_inodes_of(srv.pid)
    clients = [srv.client() for _ in range(6)]
    for c in clients:
        assert c.metadata("ten.txt") == 10
    conns = server_conn_inodes(srv, 6)
    assert len(conns) == 6
    inodes = {ino for _, ino in conns}
    master = socket_inodes_of(srv.pid)
    assert not (inodes & master), "master holds client sockets"
    assert len(master) == master_socks_before
    in_workers = set()
    per_worker = {}
    for w in workers:
        mine = socket_inodes_of(w) & inodes
        per_worker[w] = len(mine)
        in_workers |= mine
    assert in_workers == inodes, per_worker
    for c in clients:
        c.quit()


def test_process_tree_one_master_n_workers(hftpd):
    srv = hftpd(workers=3)
    workers = srv.wait_workers(3)
    assert len(workers) == 3
    for w in workers:
        assert children_of(w) == [], "worker %d has children" % w
    # Nothing else runs in the server's session: one master, three workers.
    session = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[3]) == srv.pid and fields[0] not in "ZX":
                session.add(int(d))
    assert session == {srv.pid} | set(workers)


def test_worker_killed_other_transfer_intact_and_respawned(hftpd):
    data = os.urandom(16 << 20)
    srv = hftpd(files={"big": data, "ten.txt": b"0123456789"}, workers=2)
    workers = srv.wait_workers(2)
    a = srv.client(timeout=20 * SCALE)
    assert a.metadata("big") == len(data)
    mine = worker_of_connection(srv.port, a.sock.getsockname()[1], workers)
    assert mine is not None, "connection not found in a worker"
    victim = [w for w in workers if w != mine][0]
    it = a.iter_slice("big", 0, len(data), raw=True, chunk_size=1 << 20)
    got = bytearray(next(it))
    srv.kill(victim)
    t0 = time.monotonic()
    now = wait_workers_of(srv.pid, 2, 1.0 * SCALE, exclude=[victim])
    assert now, "no replacement worker within %ss: %s" % (1.0 * SCALE,
                                                          srv.workers())
    assert mine in now
    for chunk in it:
        got += chunk
    assert bytes(got) == data
    assert a.metadata("ten.txt") == 10
    # New clients are served (possibly by the new worker).
    cs = [srv.client() for _ in range(4)]
    for c in cs:
        assert c.slice("big", 5, 10, raw=True) == data[5:15]
    assert srv.proc.poll() is None


def test_unread_responses_bound_request_reading(hftpd):
    # A client that pipelines far more than it reads: the server stops
    # reading its requests (bounded owed bytes) instead of queueing ~40 GiB
    # of answers, and its other clients are unaffected.
    srv = hftpd(files={"ten.txt": b"0123456789", "data": DATA}, workers=1)
    (worker,) = srv.wait_workers(1)
    rss_before = worker_rss_kib(worker)
    greedy = srv.client(timeout=30 * SCALE)
    flood = b"get_slice data 0 65536 raw\r\n" * 700000     # ~20 MB of requests
    t, err = send_in_thread(greedy, flood)
    t.join(1.5)
    assert t.is_alive(), "the server read 20 MB of requests from a client " \
        "that reads nothing"
    c = srv.client(timeout=2 * SCALE)
    assert c.slice("data", 7, 1000) == DATA[7:1007]
    if not (VALGRIND or ASAN):
        grown = worker_rss_kib(worker) - rss_before
        assert grown < 64 * 1024, "worker RSS grew by %d KiB" % grown
    # What was owed is intact.
    one = b"0 OK\r\nContent-Length: 65536\r\n\r\n" + DATA[:65536]
    assert greedy.read_exact(len(one) * 20) == one * 20
    greedy.sock.shutdown(socket.SHUT_RDWR)     # also wakes the sender
    t.join(10 * SCALE)
    assert not t.is_alive()
    greedy.close()
    assert c.metadata("ten.txt") == 10


def test_sigterm_with_connected_clients_exits_promptly(hftpd):
    # What every teardown relies on, made explicit: SIGTERM while clients are
    # connected (idle, mid-line, and stalled in a large slice) stops the
    # master and its workers within 5 s, leaving no process behind.
    srv = hftpd(files={"data": DATA}, workers=2)
    huge = srv.directory / "huge"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)
    workers = srv.wait_workers(2)
    idle = hftp.Client(srv.host, srv.port)
    assert idle.metadata("data") == len(DATA)
    partial = hftp.Client(srv.host, srv.port)
    partial.send_raw(b"get_meta")
    stalled = hftp.Client(srv.host, srv.port)
    stalled.send_raw(b"get_slice huge 0 %d raw\r\n" % (1 << 30))
    time.sleep(0.2)
    try:
        problems = srv.stop()
        assert not problems, problems
        assert not [w for w in workers if process_alive(w)]
    finally:
        for c in (idle, partial, stalled):
            c.close()
