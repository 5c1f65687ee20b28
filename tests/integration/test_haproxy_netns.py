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

Needs root, `ip netns` and haproxy (tests/install-deps.sh installs them);
otherwise skipped with the reason.  Namespaces, veths and processes are
removed at the end of the module, whatever happened.
"""

import concurrent.futures
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HFTPD_BIN, REPO, SUITE_USER, free_port, wait_for

import hftp.progress
import hftp.transfer

pytestmark = [pytest.mark.slow, pytest.mark.netns]

HOSTS = 3
SUBNET = "10.199.%d.%d"         # 10.199.K.1 in NS-lb, 10.199.K.2 in host K
HFTP_PORT = 19500
CHECK_INTER_S = 1.0             # conf/haproxy.cfg: inter 1s fall 2
CHECK_FALL = 2
MiB = 1 << 20
# Sizes of the served files (the 200 downloads cycle through them).
SIZES = [0, 1, 1000, 65536, 300_000, MiB + 7, 3 * MiB]
DOWNLOADS = 200
THREADS = 8
RATE = 6 * MiB                  # per download: big ones take ~0.5 s
SUITE_DEADLINE_S = 170
# Columns of HAProxy's "show stat" CSV.
STAT_SCUR = 4
STAT_STATUS = 17


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
            (d / "hftpd.conf").write_text(
                "listen = %s:%d proxy_protocol\n" % (SUBNET % (k, 2), HFTP_PORT) +
                "directory = %s\n" % (d / "data") +
                "workers = 2\n"
                "user = %s\n" % SUITE_USER +
                "access_log = %s\n" % (d / "access.log") +
                "pid_file = %s\n" % (d / "hftpd.pid") +
                "shutdown_timeout = 30\n")
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

    def haproxy_cfg(self):
        """conf/haproxy.cfg, with this topology's bind, servers and socket."""
        text = (REPO / "conf" / "haproxy.cfg").read_text()
        text = re.sub(r"(?m)^\s*log /dev/log.*\n", "", text)
        # two descriptors per connection: stay under this machine's limit
        text = re.sub(r"(?m)^(\s*maxconn) \d+", r"\1 1000", text)
        text = re.sub(r"(?m)^(\s*stats socket) \S+", r"\1 %s" % (self.tmp / "admin.sock"), text)
        text = re.sub(r"(?m)^(\s*bind) \S+", r"\1 127.0.0.1:%d" % self.port, text)
        text = re.sub(r"(?m)^\s*server .*\n", "", text)
        text = text.rstrip("\n") + "\n" + "".join(
            "\tserver host%d %s:%d namespace %s\n" % (k, SUBNET % (k, 2), HFTP_PORT, self.lb)
            for k in range(1, HOSTS + 1))
        return text

    def start_haproxy(self):
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(self.haproxy_cfg())
        err = open(self.tmp / "haproxy.stderr", "ab")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                        start_new_session=True)
        err.close()

    # -- observing ---------------------------------------------------------

    def stat_rows(self):
        """HAProxy's "show stat" rows of the hosts, host1 first."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.tmp / "admin.sock"))
                s.sendall(b"show stat\n")
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
        except OSError:
            return []
        rows = [ln.split(",") for ln in out.decode().splitlines() if ln.startswith("hftpd,host")]
        return sorted(rows, key=lambda r: r[1])

    def status(self):
        """Each host's status as HAProxy sees it (UP, DOWN, ...)."""
        return [r[STAT_STATUS].split()[0] for r in self.stat_rows()]

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

    # -- undoing -----------------------------------------------------------

    def restore(self):
        """Every host running and UP again (after a test stopped one)."""
        for k, p in self.procs.items():
            if p.poll() is not None:
                self.start_host(k)
        assert self.wait_status(["UP"] * HOSTS, 15), self.status()

    def teardown(self):
        procs = list(self.procs.values()) + ([self.haproxy] if self.haproxy else [])
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
    load.  Returns (wrong, failed): lists of what went wrong."""
    outdir.mkdir()
    wrong, failed = [], []
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        futs = [pool.submit(download, net, outdir, i, retries) for i in range(count)]
        if during is not None:
            time.sleep(after_s)
            during()
        for f in futs:
            try:
                name, digest = f.result(timeout=120)
            except Exception as e:      # noqa: BLE001 (counted, then asserted)
                failed.append(repr(e))
                continue
            if digest != net.sums[name]:
                wrong.append(name)
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
        # HAProxy's side of the link (10.199.K.1) appears only for checks
        log = (net.tmp / ("h%d" % k) / "access.log").read_text()
        via = [ln for ln in log.splitlines() if (SUBNET % (k, 1)) + ":" in ln]
        assert all('"help"' in ln for ln in via), via[:3]
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
