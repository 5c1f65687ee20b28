"""hftpd behind a real HAProxy, on a network of namespaces built here.

Topology (addresses only inside the namespaces this module creates, and
loopback):

    root namespace                      NS-lb                 NS-h1..3
    client (this process) --127.0.0.1--> HAProxy ==veth==> hftpd 10.199.K.2
                                         (its server sockets   (listen ...
                                          live in NS-lb)        proxy_protocol)

HAProxy runs from the root namespace so that the client reaches it over
loopback; its `server ... namespace NS-lb` lines put every connection to a
host (and every health check) inside NS-lb, which has one veth pair to each
host's namespace.  The HAProxy configuration is conf/haproxy.cfg with its
bind, server and stats lines adapted.  Every host serves an identical copy
of one directory.

Checks: 200 downloads, each sha256-correct, spread over the three hosts by
their access logs (which show the client's real address, 127.0.0.1, not
HAProxy's); SIGKILL of one host mid-load (marked down within its check
interval, the client's retry finishes every download elsewhere); `hftpd -s
quit` mid-load (zero failed downloads, without retries); `-s reload` of every
host in turn mid-load (zero failed downloads, without retries).

Health checks: HAProxy asks each host's status listener for GET /health
(conf/haproxy.cfg): seconds of checks add no access-log line; during a
graceful stop /health answers 503 "draining" and HAProxy marks the host
down on that answer (L7STS/503) while, in its shutdown_grace, the host
still accepts HFTP connections (one made straight to it after the DOWN is
served), so that no download through HAProxy under load fails, is retried
or redispatched; after the grace its HFTP port refuses.

Encryption: a second HAProxy runs conf/haproxy-tls.cfg (bind, crt, servers
and socket adapted) in front of the same hosts, with a CA and a server
certificate the module makes with openssl.  `hftp --tls --cafile` mirrors
every file through it, sha256-correct, and the hosts' access logs show the
client's address; a plain client on the TLS port and a TLS client trusting
another CA each fail with one clear line.  Each host's config believes PROXY
headers only from its link to HAProxy (`proxy_trusted`), as
conf/haproxy-tls.cfg advises.

Needs root, `ip netns` and haproxy (tests/install-deps.sh installs them);
otherwise skipped with the reason.  Namespaces, veths and processes are
removed at the end of the module, whatever happened.
"""

import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from client_util import hftp_run
from conftest import HFTPD_BIN, REPO, SUITE_USER, free_port, wait_for
from tls_util import (STAT_CHECK_CODE, STAT_CHECK_STATUS, STAT_SCUR, STAT_STATUS,
                      adapt_haproxy_cfg, haproxy_stat_rows, make_certs)

import hftp.progress
import hftp.transfer

pytestmark = [pytest.mark.slow, pytest.mark.netns]

HOSTS = 3
SUBNET = "10.199.%d.%d"         # 10.199.K.1 in NS-lb, 10.199.K.2 in host K
HFTP_PORT = 19500
STATUS_PORT = 19580             # each host's status_listen, checked by HAProxy
CHECK_INTER_S = 1.0             # conf/haproxy.cfg: inter 1s fall 2
CHECK_FALL = 2
# each host's shutdown_grace: longer than inter x fall plus the time HAProxy
# takes to notice under load, so the DOWN comes well inside it
GRACE_S = 6
# "show stat" columns: connection errors, retries, redispatches
STAT_ECON = 13
STAT_WRETR = 15
STAT_WREDIS = 16
CHECKS_WINDOW_S = 5
MiB = 1 << 20
# Sizes of the served files (the 200 downloads cycle through them).
SIZES = [0, 1, 1000, 65536, 300_000, MiB + 7, 3 * MiB]
DOWNLOADS = 200
THREADS = 8
RATE = 6 * MiB                  # per download: big ones take ~0.5 s
SUITE_DEADLINE_S = 170


def run(*argv, check=True):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=20, check=check)


def skip_reason():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs ip (iproute2)"
    if shutil.which("haproxy") is None:
        return "needs haproxy (tests/install-deps.sh installs it)"
    probe = "hftpt%d-probe" % os.getpid()
    r = run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return "cannot create a network namespace: %s" % r.stderr.decode().strip()
    run("ip", "netns", "del", probe, check=False)
    return None


def remove_stale_namespaces():
    """Namespaces left by a run that was killed before its teardown."""
    for line in run("ip", "netns", "list").stdout.decode().splitlines():
        m = re.match(r"hftpt(\d+)-\S+", line)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            run("ip", "netns", "del", m.group(0), check=False)


class Net:
    """The namespaces, the hosts and HAProxy; teardown() undoes it all."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.prefix = "hftpt%d" % os.getpid()
        self.lb = self.prefix + "-lb"
        self.hosts = [self.prefix + "-h%d" % k for k in range(1, HOSTS + 1)]
        self.namespaces = []
        self.procs = {}             # host index -> Popen of its master
        self.haproxy = None
        self.port = free_port()
        self.data = tmp / "data"
        self.sums = {}
        self.tls_haproxy = None     # started by the tls fixture
        self.tls_port = free_port()
        self.holders = []           # idle connections (hold_idle)

    # -- building ----------------------------------------------------------

    def netns(self, name):
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def build(self):
        self.netns(self.lb)
        for k, ns in enumerate(self.hosts, 1):
            self.netns(ns)
            a, b = "%s-a%d" % (self.prefix[-6:], k), "%s-b%d" % (self.prefix[-6:], k)
            run("ip", "-n", self.lb, "link", "add", a, "type", "veth", "peer", "name", b,
                "netns", ns)
            run("ip", "-n", self.lb, "addr", "add", SUBNET % (k, 1) + "/24", "dev", a)
            run("ip", "-n", ns, "addr", "add", SUBNET % (k, 2) + "/24", "dev", b)
            run("ip", "-n", self.lb, "link", "set", a, "up")
            run("ip", "-n", ns, "link", "set", b, "up")
        self.data.mkdir()
        for i, size in enumerate(SIZES):
            body = os.urandom(size)
            name = "f%d-%d.bin" % (i, size)
            (self.data / name).write_bytes(body)
            self.sums[name] = hashlib.sha256(body).hexdigest()
        for k in range(1, HOSTS + 1):
            d = self.tmp / ("h%d" % k)
            d.mkdir()
            shutil.copytree(self.data, d / "data")
            # both HAProxies reach host K from NS-lb's end of their link
            (d / "hftpd.conf").write_text(
                "listen = %s:%d proxy_protocol\n" % (SUBNET % (k, 2), HFTP_PORT) +
                "proxy_trusted = %s/32\n" % (SUBNET % (k, 1)) +
                "status_listen = %s:%d\n" % (SUBNET % (k, 2), STATUS_PORT) +
                "directory = %s\n" % (d / "data") +
                "workers = 2\n"
                "user = %s\n" % SUITE_USER +
                "access_log = %s\n" % (d / "access.log") +
                "pid_file = %s\n" % (d / "hftpd.pid") +
                "shutdown_timeout = 30\n"
                "shutdown_grace = %d\n" % GRACE_S)
            self.start_host(k)
        self.start_haproxy()
        assert self.wait_status(["UP"] * HOSTS, 10), self.status()

    def conf(self, k):
        return str(self.tmp / ("h%d" % k) / "hftpd.conf")

    def start_host(self, k):
        err = open(self.tmp / ("h%d" % k) / "stderr", "ab")
        self.procs[k] = subprocess.Popen(
            ["ip", "netns", "exec", self.hosts[k - 1], HFTPD_BIN, "-f", "-c", self.conf(k)],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        err.close()

    def ctl(self, k, action):
        r = run("ip", "netns", "exec", self.hosts[k - 1], HFTPD_BIN, "-c", self.conf(k),
                "-s", action, check=False)
        assert r.returncode == 0, r.stderr

    def servers(self):
        return "".join("\tserver host%d %s:%d namespace %s\n"
                       % (k, SUBNET % (k, 2), HFTP_PORT, self.lb)
                       for k in range(1, HOSTS + 1))

    def haproxy_cfg(self):
        """conf/haproxy.cfg, with this topology's bind, servers and socket."""
        return adapt_haproxy_cfg("haproxy.cfg", self.port, self.tmp / "admin.sock",
                                 self.servers(), check_port=STATUS_PORT)

    def run_haproxy(self, name, text):
        cfg = self.tmp / (name + ".cfg")
        cfg.write_text(text)
        err = open(self.tmp / (name + ".stderr"), "ab")
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
        err.close()
        return proc

    def start_haproxy(self):
        self.haproxy = self.run_haproxy("haproxy", self.haproxy_cfg())

    def start_tls_haproxy(self, certs):
        """conf/haproxy-tls.cfg in front of the same hosts, its `crt` the
        certificate the test made."""
        text = adapt_haproxy_cfg("haproxy-tls.cfg", self.tls_port,
                                 self.tmp / "admin-tls.sock", self.servers(),
                                 crt=certs.pem, check_port=STATUS_PORT)
        self.tls_haproxy = self.run_haproxy("haproxy-tls", text)

    # -- observing ---------------------------------------------------------

    def stat_rows(self, sock="admin.sock"):
        """HAProxy's "show stat" rows of the hosts, host1 first."""
        return haproxy_stat_rows(self.tmp / sock)

    def status(self, sock="admin.sock"):
        """Each host's status as HAProxy sees it (UP, DOWN, ...)."""
        return [r[STAT_STATUS].split()[0] for r in self.stat_rows(sock)]

    def sessions(self, k):
        """Connections HAProxy has open to host k now."""
        return int(self.stat_rows()[k - 1][STAT_SCUR])

    def wait_busy(self, k, timeout=5):
        """Waits until host k has a download under way; how many it has."""
        wait_for(lambda: self.sessions(k) > 0, timeout, interval=0.01)
        return self.sessions(k)

    def wait_status(self, want, timeout):
        return wait_for(lambda: self.status() == want, timeout, interval=0.1)

    def client_lines(self, k):
        """Access-log lines of host k whose client is this process."""
        log = self.tmp / ("h%d" % k) / "access.log"
        if not log.exists():
            return []
        return [ln for ln in log.read_text().splitlines() if " 127.0.0.1:" in ln]

    def lb_lines(self, k):
        """Access-log lines of host k from HAProxy's own address."""
        log = self.tmp / ("h%d" % k) / "access.log"
        if not log.exists():
            return []
        return [ln for ln in log.read_text().splitlines()
                if " %s:" % (SUBNET % (k, 1)) in ln]

    def check_result(self, k):
        """HAProxy's last check of host k: (check_status, check_code)."""
        row = self.stat_rows()[k - 1]
        return row[STAT_CHECK_STATUS], row[STAT_CHECK_CODE]

    def health(self, k):
        """GET /health on host k's status listener, from NS-lb (where
        HAProxy's checks come from): (status code, body)."""
        r = run("ip", "netns", "exec", self.lb, "curl", "-s", "-m", "5", "-w",
                "\n%{http_code}", "http://%s:%d/health" % (SUBNET % (k, 2), STATUS_PORT),
                check=False)
        body, _, code = r.stdout.decode().rpartition("\n")
        return int(code or 0), body

    def hftp_answers(self, k):
        """Whether host k's HFTP port, reached straight from NS-lb (not
        through HAProxy) with a PROXY v2 LOCAL header, answers a help;
        False when it refuses the connection."""
        script = ("import socket,sys\n"
                  "try:\n"
                  "    s=socket.create_connection((%r,%d),timeout=5)\n"
                  "except ConnectionRefusedError:\n"
                  "    sys.exit(3)\n"
                  "s.sendall(b'\\r\\n\\r\\n\\x00\\r\\nQUIT\\n\\x20\\x00\\x00\\x00help\\r\\nquit\\r\\n')\n"
                  "b=b''\n"
                  "while True:\n"
                  "    d=s.recv(4096)\n"
                  "    if not d: break\n"
                  "    b+=d\n"
                  "sys.exit(0 if b.startswith(b'0 OK') else 4)\n" % (SUBNET % (k, 2), HFTP_PORT))
        r = run("ip", "netns", "exec", self.lb, "/usr/bin/python3", "-c", script, check=False)
        assert r.returncode in (0, 3), (r.returncode, r.stderr)
        return r.returncode == 0

    def errors(self, k):
        """HAProxy's connection errors, retries and redispatches of host k."""
        row = self.stat_rows()[k - 1]
        return [int(row[i] or 0) for i in (STAT_ECON, STAT_WRETR, STAT_WREDIS)]

    def hold_idle(self, k):
        """A client connection to host k that stays open, idle, until its
        stdin closes: from NS-lb, with the PROXY v2 LOCAL header HAProxy's
        own connections would carry.  Keeps a draining host draining."""
        script = ("import socket,sys\n"
                  "s=socket.create_connection((%r,%d),timeout=10)\n"
                  "s.sendall(b'\\r\\n\\r\\n\\x00\\r\\nQUIT\\n\\x20\\x00\\x00\\x00help\\r\\n')\n"
                  "b=b''\n"
                  "while not b.endswith(b'\\r\\n\\r\\n'):\n"
                  "    d=s.recv(4096)\n"
                  "    assert d, b\n"
                  "    b+=d\n"
                  "print('ready',flush=True)\n"
                  "sys.stdin.read()\n" % (SUBNET % (k, 2), HFTP_PORT))
        p = subprocess.Popen(["ip", "netns", "exec", self.lb, "/usr/bin/python3", "-c", script],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             start_new_session=True)
        self.holders.append(p)
        assert p.stdout.readline() == b"ready\n"
        return p

    # -- undoing -----------------------------------------------------------

    def restore(self):
        """Every host running and UP again (after a test stopped one)."""
        for k, p in self.procs.items():
            if p.poll() is not None:
                self.start_host(k)
        assert self.wait_status(["UP"] * HOSTS, 15), self.status()

    def teardown(self):
        procs = list(self.procs.values()) + [p for p in (self.haproxy, self.tls_haproxy) if p]
        procs += self.holders
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # masters of other generations are in the same session: gone too
        for ns in self.namespaces:
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run("ip", "netns", "del", ns, check=False)   # takes its veths along


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(HFTPD_BIN):
        pytest.skip("no hftpd binary at %s (run make)" % HFTPD_BIN)
    remove_stale_namespaces()
    top = tmp_path_factory.mktemp("netns")
    n = Net(top)
    n.started = time.monotonic()
    try:
        n.build()
        yield n
    finally:
        n.teardown()
        left = run("ip", "netns", "list").stdout.decode()
        assert n.prefix not in left, left
    took = time.monotonic() - n.started
    assert took < SUITE_DEADLINE_S, "the namespace suite took %.0f s" % took


def download(net, outdir, i, retries):
    """Download number i (cycling through the files); (name, sha256)."""
    names = sorted(net.sums)
    name = names[i % len(names)]
    opts = hftp.transfer.Options(host="127.0.0.1", port=net.port, timeout=10,
                                 connections=1, retries=retries, limit_rate=RATE)
    session = hftp.transfer.Session(opts, hftp.progress.Progress(enabled=False))
    out = outdir / ("%03d-%s" % (i, name))
    target = hftp.transfer.resolve_target(name, str(out))
    hftp.transfer.FileDownload(session, name, target).run(threaded=False)
    return name, hashlib.sha256(out.read_bytes()).hexdigest()


def load(net, outdir, count, retries, during=None, after_s=1.0):
    """count downloads on THREADS threads; during() runs after_s into the
    load, and the downloads go on (past count if need be) until it has
    returned, so that it always runs under load however fast or slow the
    build (ASan, valgrind) is.  Returns (wrong, failed): lists of what went
    wrong."""
    outdir.mkdir()
    wrong, failed = [], []
    numbers = itertools.count()
    done = threading.Event()
    if during is None:
        done.set()

    def downloader():
        while True:
            i = next(numbers)
            if i >= count and done.is_set():
                return
            try:
                name, digest = download(net, outdir, i, retries)
            except Exception as e:      # noqa: BLE001 (counted, then asserted)
                failed.append(repr(e))
                continue
            if digest != net.sums[name]:
                wrong.append(name)

    threads = [threading.Thread(target=downloader, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    if during is not None:
        time.sleep(after_s)
        try:
            during()
        finally:
            done.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a download hung"
    return wrong, failed


def test_downloads_spread_with_real_client_address(net, tmp_path):
    before = [len(net.client_lines(k)) for k in range(1, HOSTS + 1)]
    wrong, failed = load(net, tmp_path / "out", DOWNLOADS, retries=0)
    assert wrong == [] and failed == []
    time.sleep(1.5)                     # access logs are written once a second
    per_host = []
    for k in range(1, HOSTS + 1):
        lines = net.client_lines(k)[before[k - 1]:]
        # one connection per download: count the client's distinct ports
        per_host.append(len({ln.split()[1] for ln in lines}))
        # HAProxy's side of the link (10.199.K.1) never appears: its
        # checks go to the status listener, which writes no access log
        assert net.lb_lines(k) == [], net.lb_lines(k)[:3]
    assert sum(per_host) == DOWNLOADS, per_host
    assert all(n > 0 for n in per_host), per_host


def test_sigkill_one_host_mid_load(net, tmp_path):
    victim = 2
    down_after = []

    def kill():
        down_after.append(net.wait_busy(victim))
        t0 = time.monotonic()
        os.killpg(net.procs[victim].pid, signal.SIGKILL)
        want = ["UP"] * HOSTS
        want[victim - 1] = "DOWN"
        assert net.wait_status(want, 10), net.status()
        down_after.append(time.monotonic() - t0)

    try:
        wrong, failed = load(net, tmp_path / "out", 120, retries=8, during=kill)
        assert wrong == [] and failed == [], (wrong, failed[:3])
        # fall 2 checks 1 s apart, plus one interval of phase and the timeout
        # downloads were under way on the victim: the retries finished them
        assert down_after[0] > 0, down_after
        assert down_after[1] <= CHECK_FALL * CHECK_INTER_S + 2.5, down_after
    finally:
        net.restore()


def test_quit_one_host_mid_load(net, tmp_path):
    victim = 1
    state = {}

    def quit_host():
        state["in_flight"] = net.wait_busy(victim)
        net.ctl(victim, "quit")
        want = ["UP"] * HOSTS
        want[victim - 1] = "DOWN"
        state["down"] = net.wait_status(want, 10)

    try:
        wrong, failed = load(net, tmp_path / "out", 120, retries=0, during=quit_host)
        assert wrong == [] and failed == [], (wrong, failed[:3])
        assert state["down"], net.status()
        # it had downloads under way, and they finished
        assert state["in_flight"] > 0
        # the master exits once its in-flight downloads are done
        net.procs[victim].wait(30)
        assert net.procs[victim].returncode == 0
    finally:
        net.restore()


def test_health_checks_cost_no_access_log_line(net):
    assert net.wait_status(["UP"] * HOSTS, 15), net.status()
    time.sleep(1.5)                     # access logs are written once a second
    logs = [net.tmp / ("h%d" % k) / "access.log" for k in range(1, HOSTS + 1)]
    sizes = [p.stat().st_size if p.exists() else 0 for p in logs]
    time.sleep(CHECKS_WINDOW_S)         # about CHECKS_WINDOW_S checks per host
    for k in range(1, HOSTS + 1):
        assert net.check_result(k) == ("L7OK", "200"), net.stat_rows()[k - 1]
    time.sleep(1.5)
    assert [p.stat().st_size if p.exists() else 0 for p in logs] == sizes
    assert all(net.lb_lines(k) == [] for k in range(1, HOSTS + 1))


def test_graceful_stop_says_draining_and_is_marked_down(net, tmp_path):
    """The order shutdown_grace gives: /health says draining, HAProxy marks
    the host DOWN, and only then (the grace over) its HFTP port closes; under
    load, not one download fails, is retried or redispatched."""
    victim = 3
    holder = net.hold_idle(victim)      # keeps the host draining after the grace
    state = {}

    def quit_host():
        net.wait_busy(victim)
        state["errors"] = net.errors(victim)
        net.ctl(victim, "quit")
        t0 = time.monotonic()
        state["health"] = net.health(victim)
        want = ["UP"] * HOSTS
        want[victim - 1] = "DOWN"
        state["down"] = net.wait_status(want, GRACE_S + 5)
        state["took"] = time.monotonic() - t0
        state["check"] = net.check_result(victim)
        # marked down, and the host still takes HFTP connections
        state["answers_after_down"] = net.hftp_answers(victim)
        state["answered_at"] = time.monotonic() - t0
        state["refused"] = wait_for(lambda: not net.hftp_answers(victim), GRACE_S + 10,
                                    interval=0.2)
        state["refused_at"] = time.monotonic() - t0

    try:
        assert net.health(victim) == (200, "ok\n")
        wrong, failed = load(net, tmp_path / "out", 60, retries=0, during=quit_host)
        assert wrong == [] and failed == [], (wrong, failed[:3])
        assert state["health"] == (503, "draining\n")
        assert state["down"], net.status()
        # marked down on /health's answer (not a refused connection)
        assert state["check"] == ("L7STS", "503"), state["check"]
        assert state["took"] <= CHECK_FALL * CHECK_INTER_S + 2.5, state["took"]
        assert state["answers_after_down"], state
        assert state["answered_at"] < GRACE_S, state
        # the grace over, the HFTP port refuses; the host still runs
        assert state["refused"] and state["refused_at"] >= GRACE_S * 0.9, state
        assert net.procs[victim].poll() is None
        # HAProxy never met a refused connection there: nothing to retry
        assert net.errors(victim) == state["errors"], (net.errors(victim), state)
        holder.stdin.close()
        holder.wait(10)
        # its last client gone, the master exits
        net.procs[victim].wait(30)
        assert net.procs[victim].returncode == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        net.restore()


def test_reload_every_host_mid_load(net, tmp_path):
    in_flight = []

    def reload_all():
        for k in range(1, HOSTS + 1):
            in_flight.append(net.wait_busy(k))
            net.ctl(k, "reload")
            time.sleep(0.7)

    try:
        wrong, failed = load(net, tmp_path / "out", 150, retries=0, during=reload_all,
                             after_s=0.5)
        assert wrong == [] and failed == [], (wrong, failed[:3])
        # a reload is invisible to HAProxy: every host stayed UP
        assert net.status() == ["UP"] * HOSTS
        assert "reload" in (net.tmp / "h1" / "stderr").read_text().lower()
        # each host was reloaded with downloads under way
        assert all(n > 0 for n in in_flight), in_flight
    finally:
        net.restore()


# -- encryption -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tls(net):
    """conf/haproxy-tls.cfg running in front of the hosts: (certs, address)."""
    certs = make_certs(net.tmp / "tls")
    net.start_tls_haproxy(certs)
    assert wait_for(lambda: net.status("admin-tls.sock") == ["UP"] * HOSTS, 10), \
        net.status("admin-tls.sock")
    return certs, "127.0.0.1:%d" % net.tls_port


def one_line(r):
    err = r.stderr.decode()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_tls_fetch_sha256_correct(net, tls, tmp_path):
    certs, address = tls
    before = sum(len(net.client_lines(k)) for k in range(1, HOSTS + 1))
    r = hftp_run("--tls", "--cafile", certs.ca, address, "mirror", tmp_path / "copy",
                 "-j", "4", "-q", timeout=60)
    assert r.returncode == 0, r.stderr
    for name, digest in net.sums.items():
        got = hashlib.sha256((tmp_path / "copy" / name).read_bytes()).hexdigest()
        assert got == digest, name
    # the PROXY v2 header came through TLS termination: the hosts logged
    # this process's address, one line per request at least
    time.sleep(1.5)                     # access logs are written once a second
    after = sum(len(net.client_lines(k)) for k in range(1, HOSTS + 1))
    assert after - before >= len(net.sums) + 1, (before, after)


def test_tls_port_refuses_plain_client_clearly(net, tls):
    _, address = tls
    t0 = time.monotonic()
    r = hftp_run(address, "ls", timeout=20)
    assert time.monotonic() - t0 < 15
    assert r.returncode == 5
    assert "--tls" in one_line(r)


def test_tls_client_with_another_ca_fails_clearly(net, tls):
    certs, address = tls
    r = hftp_run("--tls", "--cafile", certs.other_ca, address, "ls", timeout=20)
    assert r.returncode == 5
    err = one_line(r)
    assert "certificate not verified" in err and "unable to get local issuer" in err, err
    r = hftp_run("--tls", "--cafile", certs.ca, address, "ls", timeout=20)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().split()) == sorted(net.sums)
