"""`hftpd -s upgrade`: the binary now on disk replaces the running master
without a refused connection or a cut download; a broken binary leaves the
running master as it was.

Each daemon runs from a copy of $HFTPD_BIN in the test's tmp folder, so that
the test can rename a new file over "the installed binary" as a package
manager does."""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (HFTPD_BIN, MiB, SCALE, VALGRIND, Daemon, Load, free_port,
                      listener_inode, process_alive, request, wait_for,
                      wrap_command)


class CopiedDaemon(Daemon):
    """A Daemon whose binary is a copy in its own folder (self.binary)."""

    def __init__(self, tmp_path, **kw):
        super().__init__(tmp_path, **kw)
        self.bindir = self.root / "sbin"
        self.bindir.mkdir()
        self.binary = self.bindir / "hftpd"
        shutil.copy2(HFTPD_BIN, self.binary)

    def command(self, *args, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return wrap_command([str(self.binary)] + list(args),
                            str(self.toollogs), full_env)

    def replace_binary(self, content=None):
        """A new file renamed over the binary: a fresh copy of $HFTPD_BIN,
        or the given script text."""
        tmp = self.bindir / "hftpd.new"
        if content is None:
            shutil.copy2(HFTPD_BIN, tmp)
        else:
            tmp.write_text(content)
            tmp.chmod(0o755)
        os.rename(tmp, self.binary)

    @property
    def oldbin(self):
        return self.pid_file.with_name(self.pid_file.name + ".oldbin")

    def upgrade_command(self):
        return wrap_command([HFTPD_BIN, "-s", "upgrade", "-c", str(self.conf)],
                            str(self.toollogs), dict(os.environ))

    def upgrade(self):
        """`-s upgrade` run by $HFTPD_BIN (the copy may be a broken
        binary); returns (CompletedProcess with .out/.err, pid file's pid)."""
        argv, env = self.upgrade_command()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=60 * SCALE)
        r.out = r.stdout.decode(errors="replace")
        r.err = r.stderr.decode(errors="replace")
        pid = self.read_pid()
        if pid is not None:
            self.masters.add(pid)
        return r, pid

    def processes(self):
        """Pids of every process running this daemon's binary (any
        version of the file, deleted or not)."""
        return [pid for pid, exe, _fds in _processes() if exe.startswith(str(self.binary))]


@pytest.fixture
def copied(tmp_path):
    made = []

    def make(**kw):
        d = CopiedDaemon(tmp_path, name="hftpd%d" % len(made), **kw)
        made.append(d)
        return d

    yield make
    problems = []
    for d in made:
        problems += d.cleanup()
    assert not problems, "\n".join(problems)


def fd_kinds(pid):
    """What a process's descriptors are, as a sorted list of kinds
    (socket, pipe, or the path)."""
    kinds = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink("%s/%s" % (d, fd))
        except OSError:
            continue
        kinds.append(re.sub(r":\[\d+\]$", "", t))
    return sorted(kinds)


class SlowDownload(threading.Thread):
    """One raw get_slice of a whole file, read at about `rate` bytes/s
    through a small receive buffer, so the server is still sending while
    the master changes; the body is checked through SHA-1."""

    def __init__(self, port, name, data, rate=4 * MiB):
        super().__init__(daemon=True)
        self.port, self.name, self.size = port, name, len(data)
        self.digest = hashlib.sha1(data).digest()
        self.rate = rate
        self.received = 0
        self.error = None
        self.ok = False

    def run(self):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
            s.settimeout(30 * SCALE)
            s.connect(("127.0.0.1", self.port))
            s.sendall(b"get_slice %s 0 %d raw\r\n" % (self.name.encode(), self.size))
            want = b"0 OK\r\nContent-Length: %d\r\n\r\n" % self.size
            head = b""
            while len(head) < len(want):
                d = s.recv(len(want) - len(head))
                if not d:
                    raise ConnectionError("closed in the header: %r" % head)
                head += d
            assert head == want, head
            h = hashlib.sha1()
            t0 = time.monotonic()
            while self.received < self.size:
                d = s.recv(min(64 * 1024, self.size - self.received))
                if not d:
                    raise ConnectionError("closed after %d of %d bytes"
                                          % (self.received, self.size))
                h.update(d)
                self.received += len(d)
                ahead = self.received / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            s.close()
            assert h.digest() == self.digest, "body differs from the file"
            self.ok = True
        except Exception as e:      # reported by the test
            self.error = e


class FreshConnections(threading.Thread):
    """Fresh connections in a loop, one `get_metadata` each: every one
    must be answered right."""

    def __init__(self, port, name, size):
        super().__init__(daemon=True)
        self.port = port
        self.line = b"get_metadata %s\r\nquit\r\n" % name.encode()
        self.want = b"0 OK\r\n%d\r\n0 OK\r\n" % size
        self.stop = threading.Event()
        self.count = 0
        self.failures = []

    def run(self):
        while not self.stop.is_set() and len(self.failures) < 20:
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=10 * SCALE) as s:
                    s.sendall(self.line)
                    out = b""
                    while True:
                        d = s.recv(4096)
                        if not d:
                            break
                        out += d
                if out != self.want:
                    self.failures.append("answer %r" % out[:100])
            except OSError as e:
                self.failures.append(repr(e))
            self.count += 1


@pytest.mark.slow
def test_upgrade_under_downloads_drops_nothing(copied):
    data = os.urandom(16 * MiB)
    d = copied(files={"big.bin": data, "small": b"x" * 10})
    status = free_port()
    d.write_config(extra_lines=["status_listen = 127.0.0.1:%d" % status])
    d.start()
    old = d.master
    old_workers = d.wait_workers(2)
    downloads = [SlowDownload(d.port, "big.bin", data) for _ in range(8)]
    for t in downloads:
        t.start()
    assert wait_for(lambda: all(t.received > 0 or t.error for t in downloads),
                    10 * SCALE)
    fresh = FreshConnections(d.port, "small", 10)
    fresh.start()
    assert wait_for(lambda: fresh.count >= 20, 10 * SCALE)

    d.replace_binary()
    r, new = d.upgrade()
    in_flight = [t.received < t.size for t in downloads]
    assert r.returncode == 0, (r.err, d.log()[-3000:])
    assert new is not None and new != old, (new, old)
    # the downloads were still running when the new master took over
    assert all(in_flight), [t.received for t in downloads]
    assert "new master pid %d" % new in r.out
    assert process_alive(new)
    # the old master drains its downloads: still there, named by .oldbin
    assert process_alive(old), "old master left before its downloads finished"
    assert d.oldbin.read_text().strip() == str(old)
    d.master = new
    new_workers = d.wait_workers(2)
    assert not set(new_workers) & set(old_workers)
    before = fresh.count
    assert wait_for(lambda: fresh.count >= before + 50, 20 * SCALE), (
        "no fresh connection served after the upgrade")
    # while the old master drains, a load balancer's check of the shared
    # status socket never hears "draining": only the new master answers
    assert process_alive(old)
    checks = [_health(status) for _ in range(30)]
    assert all(c == (200, b"ok\n") for c in checks), checks

    for t in downloads:
        t.join(60 * SCALE)
    fresh.stop.set()
    fresh.join(30 * SCALE)
    bad = ["%d: %s (%d bytes)" % (i, t.error, t.received)
           for i, t in enumerate(downloads) if not t.ok]
    assert not bad, bad
    assert not fresh.failures, fresh.failures[:5]
    assert wait_for(lambda: not process_alive(old), 10 * SCALE), "old master stays"
    assert not d.oldbin.exists()
    assert d.read_pid() == new
    assert "this one stops accepting and drains" in d.log()


def test_broken_binary_leaves_the_master_serving(copied):
    d = copied(files={"hello.txt": b"hello, world\n"})
    d.start()
    old = d.master
    workers = d.wait_workers(2)
    d.replace_binary("#!/bin/sh\necho 'this binary is broken' >&2\nexit 1\n")
    t0 = time.monotonic()
    r, pid = d.upgrade()
    assert r.returncode == 1, r.out
    assert "upgrade failed" in r.err and "exited with status 1" in r.err, r.err
    assert time.monotonic() - t0 < 10 * SCALE
    assert pid == old
    assert not d.oldbin.exists()
    if not VALGRIND:    # under valgrind every exe is the tool's
        assert sorted(d.processes()) == sorted([old] + workers)
    assert d.workers() == workers
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.sendall(b"get_metadata hello.txt\r\nquit\r\n")
        assert s.recv(100).startswith(b"0 OK\r\n13\r\n")
    assert "upgrade failed, the running master goes on" in d.log()

    # no binary at all: exec fails, and that is the reason given
    os.unlink(d.binary)
    r, pid = d.upgrade()
    assert r.returncode == 1 and "exec" in r.err, r.err
    assert pid == old and not d.oldbin.exists()
    assert d.workers() == workers

    # a binary that speaks another HFTPD_INHERIT version: it says so through
    # the ready pipe (ready= is in every version) and takes nothing over
    real = d.bindir / "hftpd.real"
    shutil.copy2(HFTPD_BIN, real)
    d.replace_binary('#!/bin/sh\nHFTPD_INHERIT="9;${HFTPD_INHERIT#1;}" exec %s "$@"\n'
                     % real)
    r, pid = d.upgrade()
    assert r.returncode == 1, r.out
    assert "HFTPD_INHERIT format version 9" in r.err, r.err
    assert pid == old and not d.oldbin.exists()
    assert d.workers() == workers

    # a good binary again: the same master upgrades fine afterwards
    d.replace_binary()
    r, pid = d.upgrade()
    assert r.returncode == 0, r.err
    assert pid != old
    d.master = pid
    assert wait_for(lambda: not process_alive(old), 10 * SCALE)


@pytest.mark.slow
def test_twenty_upgrades_under_load_leak_nothing(copied):
    files = {"a.txt": os.urandom(70000), "b.txt": b"b" * 1000}
    d = copied(files=files)
    d.start()
    d.wait_workers(2)
    first_fds = fd_kinds(d.master)
    load = Load(d.port, files, threads=3).start()
    assert load.wait_progress(20)
    masters = [d.master]
    for i in range(20):
        d.replace_binary()
        r, pid = d.upgrade()
        assert r.returncode == 0, "upgrade %d: %s\n%s" % (i, r.err, d.log()[-3000:])
        assert pid not in masters
        masters.append(pid)
        d.master = pid
        assert load.wait_progress(5), "no progress after upgrade %d" % i
    assert load.finish()
    assert not load.failures, load.failures[:5]
    assert wait_for(lambda: not any(process_alive(p) for p in masters[:-1]),
                    20 * SCALE), "old masters left"
    final = masters[-1]
    workers = d.wait_workers(2)
    assert sorted(d.processes()) == sorted([final] + workers)
    assert fd_kinds(final) == first_fds
    assert not d.oldbin.exists()
    assert d.read_pid() == final
    assert load.requests > 100


def _processes(with_fds=False):
    """(pid, its exe or "", its descriptors' targets) of every process we may read."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % p)
        except OSError:
            exe = ""
        fds = []
        if with_fds:
            try:
                for fd in os.listdir("/proc/%s/fd" % p):
                    try:
                        fds.append(os.readlink("/proc/%s/fd/%s" % (p, fd)))
                    except OSError:
                        pass
            except OSError:
                pass
        yield int(p), exe, fds


def socket_owners(inode):
    """Pids holding the socket of that inode."""
    target = "socket:[%d]" % inode
    return [pid for pid, _exe, fds in _processes(with_fds=True) if target in fds]


def _health(port):
    """GET /health on a status listener: (status code, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    head, _, body = got.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate missing (Debian package systemd)")
def test_activated_proxy_and_plain_listeners_survive(copied):
    """A socket systemd passed, a PROXY listener, a plain one and a status
    listener: the same sockets serve after two upgrades, each as it did; a
    line no longer in the config is closed by the new master, systemd's is
    kept."""
    d = copied(files={"hello.txt": b"hello, world\n"}, workers=1)
    proxied, plain, status = free_port(), free_port(), free_port()
    d.write_config(extra_lines=["listen = 127.0.0.1:%d proxy_protocol" % proxied,
                                "listen = 127.0.0.1:%d" % plain,
                                "status_listen = 127.0.0.1:%d" % status])
    argv, env = d.command("-f", "-c", str(d.conf))
    p = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % d.port]
                         + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        assert wait_for(lambda: listener_inode(d.port), 5 * SCALE)
        assert request(d.port, b"get_metadata hello.txt\r\n") == b"0 OK\r\n13\r\n0 OK\r\n"
        d.masters.add(p.pid)
        d.master = p.pid
        assert wait_for(lambda: d.read_pid() == p.pid, 10 * SCALE)
        inodes = [listener_inode(x) for x in (d.port, proxied, plain, status)]
        header = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 %d\r\n" % proxied
        masters = [p.pid]
        for i in range(2):
            if i == 1:   # the plain line goes: the new master closes it
                d.write_config(extra_lines=[
                    "listen = 127.0.0.1:%d proxy_protocol" % proxied,
                    "status_listen = 127.0.0.1:%d" % status])
            d.replace_binary()
            r, pid = d.upgrade()
            assert r.returncode == 0, (r.err, d.log()[-3000:])
            masters.append(pid)
            d.master = pid
            assert wait_for(lambda: not process_alive(masters[-2]), 10 * SCALE)
            assert listener_inode(d.port) == inodes[0]
            assert socket_owners(inodes[0]) == [pid]
            assert listener_inode(proxied) == inodes[1]
            assert listener_inode(status) == inodes[3]
            assert socket_owners(inodes[3]) == [pid]
            assert _health(status) == (200, b"ok\n")
            assert request(d.port, b"get_metadata hello.txt\r\n") == \
                b"0 OK\r\n13\r\n0 OK\r\n"
            assert request(proxied, header + b"get_metadata hello.txt\r\n") == \
                b"0 OK\r\n13\r\n0 OK\r\n"
            # a PROXY listener still wants its header: reset unanswered
            try:
                out = request(proxied, b"get_metadata hello.txt\r\n")
            except ConnectionResetError:
                out = b""
            assert not out.startswith(b"0 OK"), out
        assert listener_inode(plain) is None
        assert d.wait_log(r"inherited listener 127\.0\.0\.1:%d no longer named: closed" % plain)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.wait(10 * SCALE)


@pytest.mark.slow
def test_binary_never_ready_is_killed_with_its_children(copied):
    """A new program that never reports ready: after the bound it is killed
    with everything it started; a second request meanwhile is refused at
    once; the old master never stopped serving."""
    d = copied(files={"hello.txt": b"hello, world\n"})
    d.start()
    old = d.master
    workers = d.wait_workers(2)
    child_pid = d.root / "child.pid"
    d.replace_binary("#!/bin/sh\nsleep 301 &\necho $! > %s\nwait\n" % child_pid)
    argv, env = d.upgrade_command()
    t0 = time.monotonic()
    first = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:
        assert wait_for(lambda: child_pid.exists() and child_pid.read_text().strip(),
                        10 * SCALE)
        sleeper = int(child_pid.read_text())
        assert process_alive(sleeper)
        r, pid = d.upgrade()
        assert r.returncode == 1 and "already in progress" in r.err, r.err
        assert request(d.port, b"get_metadata hello.txt\r\n") == b"0 OK\r\n13\r\n0 OK\r\n"
        out, err = first.communicate(timeout=60 * SCALE)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    took = time.monotonic() - t0
    assert first.returncode == 1, out
    assert b"not ready within 15 s" in err, err
    assert 14 < took < 15 + 10 * SCALE, took
    assert wait_for(lambda: not process_alive(sleeper), 5 * SCALE), \
        "the new program's child outlived it"
    assert d.read_pid() == old and not d.oldbin.exists()
    assert d.workers() == workers
    assert request(d.port, b"get_metadata hello.txt\r\n") == b"0 OK\r\n13\r\n0 OK\r\n"


def test_reload_after_an_upgrade_keeps_the_pid_file(copied):
    """The new master takes the pid file over once, when it first serves: a
    later reload must not move it to .oldbin again (a stale .oldbin naming
    the live master, one more pid-file descriptor each time)."""
    d = copied(files={"hello.txt": b"hello, world\n"})
    d.start()
    old = d.master
    d.replace_binary()
    r, new = d.upgrade()
    assert r.returncode == 0, (r.err, d.log()[-3000:])
    d.master = new
    assert wait_for(lambda: not process_alive(old), 10 * SCALE)
    assert not d.oldbin.exists()
    fds_before = len(os.listdir("/proc/%d/fd" % new))
    for gen in (2, 3):
        assert d.ctl("reload").returncode == 0
        assert d.wait_log(r"configuration reloaded: generation %d" % gen)
        assert d.wait_log(r"serving .* generation %d" % gen)
    assert not d.oldbin.exists(), d.oldbin.read_text()
    assert d.read_pid() == new
    assert len(os.listdir("/proc/%d/fd" % new)) <= fds_before
    assert request(d.port, b"get_metadata hello.txt\r\n") == b"0 OK\r\n13\r\n0 OK\r\n"


def _signal(d, action):
    """hftpd -s ACTION run by $HFTPD_BIN, whatever the copy on disk is."""
    argv, env = wrap_command([HFTPD_BIN, "-s", action, "-c", str(d.conf)],
                             str(d.toollogs), dict(os.environ))
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          env=env, timeout=30 * SCALE)


@pytest.mark.slow     # the never-ready binary is a script: no valgrind run of it
def test_a_stop_wins_over_an_upgrade_under_way(copied):
    """With shutdown_grace, -s quit while a new master is starting: the
    upgrade is called off (its requester told so), a new -s upgrade during
    the grace is refused, a reload meanwhile is ignored with a warning, and
    the old master stops after the grace: no master is left."""
    d = copied(files={"hello.txt": b"hello, world\n"})
    d.write_config(extra_lines=["shutdown_grace = 3s"])
    d.start()
    old = d.master
    child_pid = d.root / "child.pid"
    d.replace_binary("#!/bin/sh\nsleep 301 &\necho $! > %s\nwait\n" % child_pid)
    argv, env = d.upgrade_command()
    first = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:
        assert wait_for(lambda: child_pid.exists() and child_pid.read_text().strip(),
                        10 * SCALE)
        sleeper = int(child_pid.read_text())
        # a reload now would be lost with this master: ignored, and said so
        # (sent by $HFTPD_BIN: the copy on disk is the never-ready script)
        assert _signal(d, "reload").returncode == 0
        assert d.wait_log(r"reload ignored: an upgrade is under way")
        assert _signal(d, "quit").returncode == 0
        out, err = first.communicate(timeout=30 * SCALE)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1 and b"the master is stopping" in err, (out, err)
    assert wait_for(lambda: not process_alive(sleeper), 10 * SCALE)
    # during the grace: still serving, and no new upgrade
    if process_alive(old):
        r, _ = d.upgrade()
        assert r.returncode == 1 and "stopping" in r.err, (r.out, r.err)
    assert wait_for(lambda: not process_alive(old), 15 * SCALE), "the master did not stop"
    assert not d.oldbin.exists()
    assert [p for p in d.processes() if process_alive(p)] == []
