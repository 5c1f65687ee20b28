"""The status listener (status_listen): /metrics that promtool accepts and
whose counters follow the traffic, /status and `hftpd -s status`, /health
saying "draining" during a graceful stop (from its first moment, while
shutdown_grace keeps the HFTP port serving), and the listener as an attack
surface: garbage, a 1 MiB request line, an HFTP command, a path outside
the four names and a silent connection each get a clear answer or are
closed within the deadline, never a file byte, while the HFTP port keeps
serving; more than 16 connections at once are closed.

Every daemon listens on free loopback ports (conftest's free_port).
"""

import json
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (
    SCALE, TCP_ESTABLISHED, free_port, listener_inode, request,
    socket_inodes_of, tcp_sockets, wait_for,
)

import hftp  # noqa: E402  (conftest put <repo>/client on sys.path)

# A file whose bytes must never come out of the status listener.
SECRET = b"SECRET-FILE-BYTES-" * 64
DEADLINE = 2.0      # the status listener's, from accept


def status_daemon(daemon, **kw):
    port = free_port()
    files = {"secret.txt": SECRET, "big.bin": bytes(range(256)) * 8192}
    d = daemon(files=files, status_listen="127.0.0.1:%d" % port, **kw)
    d.status_port = port
    d.start()
    d.wait_workers(d.workers_wanted)
    return d


def http(port, raw, timeout=10.0):
    """Sends raw bytes, returns (everything the server sent, seconds until
    it closed).  A reset counts as a close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    got = b""
    try:
        if raw:
            s.sendall(raw)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return got, time.monotonic() - t0


def get(port, path):
    got, _ = http(port, b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    head, _, body = got.partition(b"\r\n\r\n")
    return head.decode(), body


def metrics(port):
    head, body = get(port, "/metrics")
    assert head.startswith("HTTP/1.1 200 "), head
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    return body.decode()


def samples(text, name):
    """{labels text: value} of the metric's samples."""
    out = {}
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def test_metrics_counters_follow_traffic(daemon):
    d = status_daemon(daemon)
    with hftp.Client("127.0.0.1", d.port) as c:
        for _ in range(200):
            assert c.metadata("secret.txt") == len(SECRET)
        assert len(c.slice("big.bin", 0, 1 << 20)) == 1 << 20

    def counted():
        text = metrics(d.status_port)
        reqs = samples(text, "hftpd_requests_total")
        sent = samples(text, "hftpd_sent_bytes_total")
        if sum(reqs.values()) >= 201 and sum(sent.values()) >= 1 << 20:
            return text
        return None
    # workers report at most once a second: a bound with room for a loaded CI
    text = wait_for(counted, 5 * SCALE, 0.1)
    assert text, metrics(d.status_port)
    reqs = samples(text, "hftpd_requests_total")
    meta = [v for k, v in reqs.items()
            if 'command="get_metadata"' in k and 'status="0"' in k]
    assert sum(meta) == 200, reqs
    assert all(re.search(r'worker="\d+",generation="1"', k) for k in reqs)
    sent = samples(text, "hftpd_sent_bytes_total")
    body = sum(v for k, v in sent.items() if 'framing="other"' not in k)
    assert body >= 1 << 20, sent    # the slice's bytes, under its framing
    assert samples(text, "hftpd_connections_received_total")
    assert re.search(r"^hftpd_accepted_total [1-9]", text, re.M)
    assert 'hftpd_build_info{version="' in text
    pids = {int(m) for m in re.findall(r'hftpd_worker_info\{[^}]*pid="(\d+)"',
                                       text)}
    assert pids == set(d.workers())


def test_promtool_accepts_metrics(daemon):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian's prometheus package; "
                    "make deps installs it)")
    d = status_daemon(daemon)
    request(d.port, b"get_metadata secret.txt\r\n")
    time.sleep(1.2)     # one report in, so the labelled series are there
    text = metrics(d.status_port)
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr, text[:2000])
    # every family says what it is
    for name in set(re.findall(r"^(hftpd_\w+?)(?:\{| )", text, re.M)):
        assert "# HELP %s " % name in text and "# TYPE %s " % name in text


def test_status_json_and_s_status(daemon):
    d = status_daemon(daemon, workers=3)
    workers = d.workers()
    head, body = get(d.status_port, "/status")
    assert "Content-Type: application/json" in head
    doc = json.loads(body)
    assert doc["pid"] == d.master and doc["state"] == "running"
    assert doc["version"] and doc["generation"] == 1
    assert sorted(w["pid"] for w in doc["workers"]) == workers
    for w in doc["workers"]:
        assert w["state"] in ("starting", "ready") and w["generation"] == 1
    r = d.ctl("status")
    assert r.returncode == 0, r.err
    for pid in workers:
        assert re.search(r"^\d+\s+%d\s" % pid, r.out, re.M), r.out
    assert re.search(r"^master\s+%d\s+1\s+running" % d.master, r.out, re.M)
    r = d.run("-s", "status", "--json", "-c", str(d.conf))
    assert r.returncode == 0, r.err
    assert sorted(w["pid"] for w in json.loads(r.out)["workers"]) == workers


def test_s_status_without_status_listen(daemon):
    d = daemon()
    r = d.ctl("status")
    assert r.returncode == 1
    assert r.err.strip() == "hftpd: %s: status_listen is not set" % d.conf


def test_s_status_gives_up_on_a_port_that_never_accepts(daemon):
    """A status port whose connections never complete (here a listener with
    a full backlog, where the kernel drops the SYNs; a firewall that drops
    packets does the same): -s status says so within its 5 s, never hangs."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):      # more than the queue holds: the rest hang in SYN-SENT
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        d = daemon()
        d.write_config(extra_lines=["status_listen = 127.0.0.1:%d" % port])
        t0 = time.monotonic()
        r = d.ctl("status")
        took = time.monotonic() - t0
    finally:
        for c in fillers:
            c.close()
        full.close()
    assert r.returncode == 1, r.out
    assert "timed out" in r.err or "no answer" in r.err, r.err
    assert took < 10 * SCALE, took


def test_hostile_status_clients(daemon):
    d = status_daemon(daemon)
    cases = {
        "garbage": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1garbage\r\n\r\n",
                    b"HTTP/1.1 400 "),
        "1 MiB request line": (b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n",
                               b"HTTP/1.1 431 "),
        "HFTP command": (b"get_slice secret.txt 0 100\r\n", b"HTTP/1.1 400 "),
        "path outside": (b"GET /../www/secret.txt HTTP/1.1\r\n\r\n",
                         b"HTTP/1.1 404 "),
        "absolute path": (b"GET /secret.txt HTTP/1.0\r\n\r\n",
                          b"HTTP/1.1 404 "),
        "other method": (b"DELETE /metrics HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 "),
    }
    for name, (raw, want) in cases.items():
        got, took = http(d.status_port, raw)
        # 1 MiB: the answer may be lost to the reset of the unread rest
        assert got.startswith(want) or (got == b"" and len(raw) > 4096), \
            (name, got[:200])
        assert SECRET[:16] not in got, name
        assert took < DEADLINE + 2 * SCALE, (name, took)
    # a silent connection is closed at the deadline; HFTP serves meanwhile
    s = socket.create_connection(("127.0.0.1", d.status_port))
    t0 = time.monotonic()
    assert request(d.port, b"get_metadata secret.txt\r\n").startswith(
        b"0 OK\r\n%d\r\n" % len(SECRET))
    s.settimeout(10)
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    took = time.monotonic() - t0
    s.close()
    assert DEADLINE - 0.2 < took < DEADLINE + 2 * SCALE, took
    # and it still answers
    assert get(d.status_port, "/health")[1] == b"ok\n"


def test_more_than_16_connections(daemon):
    d = status_daemon(daemon)
    held = [socket.create_connection(("127.0.0.1", d.status_port))
            for _ in range(16)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", d.status_port))
    extra.settimeout(1.5 * SCALE)
    t0 = time.monotonic()
    try:
        assert extra.recv(100) == b""
    except ConnectionResetError:
        pass
    # closed at once, not at the 2 s deadline
    assert time.monotonic() - t0 < 1.5 * SCALE
    extra.close()
    # the HFTP port serves while the status listener is full
    assert request(d.port, b"get_metadata secret.txt\r\n").startswith(b"0 OK")
    for s in held:
        s.close()
    assert wait_for(lambda: get(d.status_port, "/health")[1] == b"ok\n",
                    5 * SCALE, 0.1)


def test_health_says_draining_during_graceful_stop(daemon):
    d = status_daemon(daemon)
    head, body = get(d.status_port, "/health")
    assert head.startswith("HTTP/1.1 200 ") and body == b"ok\n"
    # an open client keeps the graceful stop going
    client = socket.create_connection(("127.0.0.1", d.port))
    client.sendall(b"get_metadata secret.txt\r\n")
    assert client.recv(100).startswith(b"0 OK")
    assert d.ctl("quit").returncode == 0
    head, body = get(d.status_port, "/health")
    assert head.startswith("HTTP/1.1 503 "), head
    assert body == b"draining\n"
    assert json.loads(get(d.status_port, "/status")[1])["state"] == "draining"
    master = d.master
    client.close()
    assert wait_for(lambda: not d.workers(master) and d.read_pid() is None,
                    10 * SCALE, 0.05)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_shutdown_grace_serves_while_health_says_draining(daemon):
    """During shutdown_grace /health answers 503 while a new HFTP connection
    is still accepted and served; after it the HFTP port refuses and the
    master exits (no client open)."""
    grace = 3 * SCALE
    d = status_daemon(daemon, shutdown_grace="%ds" % grace)
    master = d.master
    assert d.ctl("quit").returncode == 0
    t_quit = time.monotonic()
    head, body = get(d.status_port, "/health")
    assert head.startswith("HTTP/1.1 503 ") and body == b"draining\n", head
    assert json.loads(get(d.status_port, "/status")[1])["state"] == "grace"
    served = 0
    while time.monotonic() - t_quit < grace * 0.5:
        assert request(d.port, b"get_metadata secret.txt\r\n").startswith(
            b"0 OK\r\n%d\r\n" % len(SECRET))
        served += 1
        time.sleep(0.1)
    assert served >= 3
    assert get(d.status_port, "/health")[0].startswith("HTTP/1.1 503 ")
    assert wait_for(lambda: refused(d.port), grace + 5 * SCALE, 0.05)
    # not before the grace (the port was served above until grace/2)
    assert time.monotonic() - t_quit >= grace * 0.9
    assert wait_for(lambda: not d.workers(master) and d.read_pid() is None,
                    10 * SCALE, 0.05)


def test_second_quit_ends_the_grace(daemon):
    """A second quit during a long shutdown_grace closes the HFTP port at once."""
    d = status_daemon(daemon, shutdown_grace="600s")
    master = d.master
    assert d.ctl("quit").returncode == 0
    assert request(d.port, b"get_metadata secret.txt\r\n").startswith(b"0 OK")
    assert d.ctl("quit").returncode == 0
    assert wait_for(lambda: refused(d.port), 5 * SCALE, 0.05)
    assert wait_for(lambda: not d.workers(master) and d.read_pid() is None,
                    10 * SCALE, 0.05)


def test_status_listener_kept_across_reload(daemon):
    """The same socket before and after (no gap), and never a worker's:
    not even a worker forked while a status connection is open holds it."""
    d = status_daemon(daemon)
    old = d.workers()
    inode = listener_inode(d.status_port)
    assert inode is not None
    held = socket.create_connection(("127.0.0.1", d.status_port))
    conns = wait_for(lambda: tcp_sockets(d.status_port, TCP_ESTABLISHED),
                     5 * SCALE, 0.01)
    assert conns, "the master did not accept the status connection"
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2")

    def gen2():
        doc = json.loads(get(d.status_port, "/status")[1])
        return doc if doc["generation"] == 2 else None
    doc = wait_for(gen2, 10 * SCALE, 0.1)
    assert doc, "no generation 2 in /status"
    assert re.search(r"^hftpd_reloads_total 1$", metrics(d.status_port), re.M)
    new = d.wait_workers(2, exclude=old)
    assert sorted(w["pid"] for w in json.loads(
        get(d.status_port, "/status")[1])["workers"]
        if w["generation"] == 2) == new
    assert listener_inode(d.status_port) == inode
    for pid in new:
        assert inode not in socket_inodes_of(pid), pid
        assert not {i for _, i in conns} & socket_inodes_of(pid), pid
    held.close()


def test_totals_survive_a_worker_killed(daemon):
    """A worker's series keeps counting across its respawn: the dead one's
    last report stays in the slot's total (a SIGKILLed worker's last second
    is all that can be lost; here it had reported)."""
    d = status_daemon(daemon, workers=1)
    (worker,) = d.workers()
    with hftp.Client("127.0.0.1", d.port) as c:
        for _ in range(50):
            c.metadata("secret.txt")

    def requests_of_slot0():
        reqs = samples(metrics(d.status_port), "hftpd_requests_total")
        return sum(v for k, v in reqs.items() if 'worker="0"' in k)
    assert wait_for(lambda: requests_of_slot0() >= 50, 5 * SCALE, 0.1)
    before = requests_of_slot0()
    d.kill(worker)
    (new,) = d.wait_workers(1, exclude=[worker])
    assert new != worker
    assert request(d.port, b"get_metadata secret.txt\r\n").startswith(b"0 OK")
    assert wait_for(lambda: requests_of_slot0() >= before + 2, 5 * SCALE, 0.1), \
        requests_of_slot0()
    text = metrics(d.status_port)
    assert re.search(r"^hftpd_worker_restarts_total 1$", text, re.M)
    assert 'hftpd_worker_info{worker="0",generation="1",pid="%d"} 1' % new in text
