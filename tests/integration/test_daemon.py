"""hftpd as a daemon: honest readiness, pid file, signals, reload
by worker generations, graceful and fast stop, log reopening, worker death and
crash-loop back-off, privilege drop, sd_notify.

Every server here is started the way an operator starts it: `hftpd -c FILE`
(daemonized through the launcher) or `hftpd -f -c FILE` where the foreground
is the point.  Each test's config, pid file, logs and served directories live
under its tmp_path; the `daemon` fixture stops (then SIGKILLs) every master it
saw and its children at teardown (the `daemon` fixture and the Daemon class
are in conftest.py).
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (
    Load, MiB, SCALE, VALGRIND, RawSlice, children_of, connect, cpu_seconds,
    free_port, listener_inode, live, make_tree, process_alive, request,
    socket_inodes_of, wait_for, worker_of_connection,
)

import hftp  # noqa: E402  (conftest put <repo>/client on sys.path)

HELLO = b"hello, world\n"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) "
    r"(master|worker)\[(\d+)\] gen (\d+): (.*)$")
ACCESS_LINE = re.compile(
    r'^(\S+) 127\.0\.0\.1:(\d+) "(.*)" (\d+) (\d+) (\d+)$')


def metadata(port, name):
    with hftp.Client("127.0.0.1", port, timeout=10 * SCALE) as c:
        return c.metadata(name)


def listing(port):
    with hftp.Client("127.0.0.1", port, timeout=10 * SCALE) as c:
        return c.listing()


def refuses(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def log_lines(text):
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        assert m, "malformed error log line: %r" % line
        out.append(m)
    return out


# -- starting -----------------------------------------------------------------

def test_start_returns_only_when_serving(daemon):
    d = daemon(workers=3)
    r = d.start()
    assert r.out == "" and r.err == "", (r.out, r.err)
    # The launcher has exited: the port must answer right now, not "soon".
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"get_metadata hello.txt\r\nquit\r\n")
        got = b""
        while len(got) < 18:
            data = s.recv(100)
            if not data:
                break
            got += data
    assert got == b"0 OK\r\n13\r\n0 OK\r\n"
    # ... and every worker is up.
    assert len(d.workers()) == 3, children_of(d.master)
    # A real daemon: pid file names the master, which runs in its own
    # session, away from us, with stdio on /dev/null.
    assert d.read_pid() == d.master and process_alive(d.master)
    assert os.getsid(d.master) != os.getsid(0)
    for fd in (0, 1, 2):
        assert os.readlink("/proc/%d/fd/%d" % (d.master, fd)) == "/dev/null"
    lines = log_lines(d.log())
    assert any(m.group(2) == "master" and m.group(4) == "1" for m in lines)
    assert metadata(d.port, "hello.txt") == len(HELLO)


def test_start_on_taken_port_fails_naming_the_address(daemon):
    d = daemon()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", d.port))
        taken.listen()
        r = d.run("-c", str(d.conf))
    assert r.returncode != 0
    assert r.err.startswith("hftpd: "), r.err
    assert "127.0.0.1:%d" % d.port in r.err, r.err
    assert "in use" in r.err, r.err
    assert not d.pid_file.exists()
    assert d.read_pid() is None


@pytest.mark.parametrize("bad, words", [
    ("bogus = 1", "bogus"),
    ("workers = many", "workers"),
    ("log_level = loud", "log_level"),
    ("shutdown_timeout = soon", "shutdown_timeout"),
    ("listen = 127.0.0.1:99999", "listen"),
])
def test_start_with_bad_config_fails_with_file_and_line(daemon, bad, words):
    d = daemon()
    last = d.write_config(extra_lines=[bad])
    r = d.run("-c", str(d.conf))
    assert r.returncode == 1, (r.returncode, r.err)
    assert r.err.startswith("hftpd: %s:%d: " % (d.conf, last)), r.err
    assert words in r.err
    assert not d.pid_file.exists()
    # -t says the same.
    t = d.run("-t", "-c", str(d.conf))
    assert t.returncode == 1
    assert "%s:%d: " % (d.conf, last) in t.err, t.err


def test_start_with_missing_directory_fails(daemon, tmp_path):
    d = daemon()
    d.write_config(directory=tmp_path / "no-such-dir")
    r = d.run("-c", str(d.conf))
    assert r.returncode == 1
    assert r.err.startswith("hftpd: ") and "no-such-dir" in r.err, r.err
    assert not d.pid_file.exists()
    assert refuses(d.port)


def test_check_config_good_and_bad(daemon):
    d = daemon()
    r = d.run("-t", "-c", str(d.conf))
    assert r.returncode == 0, r.err
    assert "ok" in (r.out + r.err)
    assert refuses(d.port)              # -t starts nothing
    assert not d.pid_file.exists()
    last = d.write_config(extra_lines=["clients_per_worker = -3"])
    r = d.run("-t", "-c", str(d.conf))
    assert r.returncode == 1
    assert "%s:%d: " % (d.conf, last) in r.err, r.err


@pytest.mark.parametrize("action", ["reload", "quit", "stop", "reopen"])
def test_signal_without_running_server(daemon, action):
    d = daemon()
    r = d.ctl(action)
    assert r.returncode == 1
    assert r.err == "hftpd: no running hftpd holds the pid file %s\n" \
        % d.pid_file, r.err


def test_signal_with_stale_pid_file_signals_nobody(daemon):
    """A pid file nobody locks names no hftpd, even if that pid is alive:
    -s must refuse and must not signal that process."""
    d = daemon()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        d.pid_file.write_text("%d\n" % bystander.pid)
        for action in ("reload", "stop"):
            r = d.ctl(action)
            assert r.returncode == 1, r.err
            assert "no running hftpd holds the pid file" in r.err
        assert bystander.poll() is None, "-s signalled an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()


def test_stale_pid_file_is_replaced(daemon):
    d = daemon()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        d.pid_file.write_text("%d\n" % bystander.pid)
        d.start()
        assert d.master != bystander.pid
        assert d.read_pid() == d.master
        assert bystander.poll() is None
        assert metadata(d.port, "hello.txt") == len(HELLO)
    finally:
        bystander.kill()
        bystander.wait()
    # Garbage in a stale pid file too.
    assert d.ctl("stop").returncode == 0
    assert wait_for(lambda: not process_alive(d.master), 5 * SCALE)
    assert wait_for(lambda: not d.pid_file.exists(), 5 * SCALE)
    d.pid_file.write_text("not a pid\n")
    d.start()
    assert d.read_pid() == d.master


def test_second_instance_is_refused(daemon):
    first = daemon(name="first")
    first.start()
    second = daemon(name="second")          # another port, same pid file
    second.write_config(pid_file=first.pid_file)
    r = second.run("-c", str(second.conf))
    assert r.returncode == 1
    assert r.err == "hftpd: already running as pid %d (pid file %s)\n" % (
        first.master, first.pid_file), r.err
    assert refuses(second.port)
    assert first.read_pid() == first.master
    assert metadata(first.port, "hello.txt") == len(HELLO)
    # -s reaches the running one; stop removes the pid file.
    workers = first.workers()
    assert second.ctl("stop").returncode == 0
    assert wait_for(lambda: not live([first.master] + workers), 2 * SCALE)
    assert wait_for(lambda: not first.pid_file.exists(), 2 * SCALE)


# -- reload -------------------------------------------------------------------

@pytest.mark.slow
def test_reload_during_twenty_64mib_downloads(daemon):
    n, size, step = 20, 64 * MiB, 4099
    data = os.urandom(size + n * step)
    view = memoryview(data)
    d = daemon(workers=2, files={"big.bin": data, "gen-a": b"a"})
    d.start()
    old = d.workers()
    assert len(old) == 2
    newdir = d.root / "data-b"
    make_tree(newdir, {"gen-b": b"b", "big.bin": b"not the same"})

    gate = threading.Event()
    downloads = [RawSlice(d.port, "big.bin", i * step,
                          view[i * step:i * step + size], gate=gate,
                          prefix=1 * MiB, timeout=120).start()
                 for i in range(n)]
    try:
        assert wait_for(lambda: all(t.started.is_set() for t in downloads),
                          60 * SCALE), "downloads did not start"
        failed = [t.describe() for t in downloads if t.error]
        assert not failed, failed
        busy = {worker_of_connection(d.port, t.local_port, old)
                for t in downloads}
        busy.discard(None)
        assert busy, "no download is held by a worker"

        d.write_config(directory=newdir)
        assert d.ctl("reload").returncode == 0
        assert d.wait_log(r"configuration reloaded: generation 2"), d.log()
        # A new generation serves new connections from the new directory...
        new = wait_for(lambda: (lambda w: w if len(set(w) - set(old)) == 2
                                  else None)(d.workers()), 10 * SCALE)
        assert new, "no second generation of workers: %s" % d.workers()
        for _ in range(4):
            assert listing(d.port) == ["big.bin", "gen-b"]
            assert metadata(d.port, "big.bin") == len(b"not the same")
        # ... while the old workers are still busy with their transfers.
        assert sorted(live(busy)) == sorted(busy), \
            "an old worker with clients exited"
        assert d.wait_log(r"worker\[\d+\] gen 1: draining")
    finally:
        gate.set()
        for t in downloads:
            t.join(180)
    failed = [t.describe() for t in downloads if not t.ok]
    assert not failed, "%d of %d downloads failed: %s" % (len(failed), n,
                                                           failed)
    # Idle now: the old generation exits, exactly `workers` remain.
    assert wait_for(lambda: not live(old), 10 * SCALE), \
        "old workers %s still alive" % live(old)
    now = d.wait_workers(2)
    assert len(now) == 2 and not set(now) & set(old), (now, old)
    assert wait_for(lambda: len(children_of(d.master)) == 2, 5 * SCALE), \
        "unreaped children: %s" % children_of(d.master)
    assert not [m.group(0) for m in log_lines(d.log())
                if m.group(1) == "error"]


def test_reload_with_broken_config_keeps_serving(daemon):
    d = daemon(workers=2)
    d.start()
    workers = d.workers()
    newdir = d.root / "data-b"
    make_tree(newdir, {"other": b"x"})
    # The broken config also changes the directory: none of it may apply.
    bad_line = d.write_config(extra_lines=["no_such_key = 1"],
                              directory=newdir)
    # `hftpd -s reload` reads the config for the pid file: with a broken
    # config it may refuse, but then it must say where the error is.
    r = d.ctl("reload")
    if r.returncode != 0:
        assert "%s:%d: " % (d.conf, bad_line) in r.err, r.err
        os.kill(d.master, signal.SIGHUP)     # what ExecReload does
    found = d.wait_log(r"^\S+ error master\[%d\] gen 1: reload failed, "
                       r"keeping the running configuration: (%s):(\d+): (.*)$"
                       % (d.master, re.escape(str(d.conf))))
    assert found, d.log()
    assert found[0][1] == str(bad_line) and "no_such_key" in found[0][2], \
        found
    assert process_alive(d.master)
    assert d.workers() == workers
    for _ in range(4):
        assert listing(d.port) == ["hello.txt"]
    assert "generation 2" not in d.log()
    # Fixed: the next reload goes through as generation 2.
    d.write_config(directory=newdir)
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2"), d.log()
    assert wait_for(lambda: listing(d.port) == ["other"], 5 * SCALE)
    assert wait_for(lambda: not live(workers), 5 * SCALE)
    assert len(d.wait_workers(2, exclude=workers)) == 2


def test_reload_with_relative_config_path(daemon):
    """`hftpd -c hftpd.conf` started from the config's folder: the daemon
    chdirs to /, yet HUP must still re-read the same file."""
    d = daemon(workers=1)
    d.start(cwd=d.root, conf="hftpd.conf")
    newdir = d.root / "data-b"
    make_tree(newdir, {"other": b"x"})
    d.write_config(directory=newdir)
    assert d.ctl("reload", conf="hftpd.conf", cwd=d.root).returncode == 0
    assert d.wait_log(r"reload failed|configuration reloaded"), d.log()
    assert "reload failed" not in d.log(), d.log()
    assert d.wait_log(r"configuration reloaded: generation 2"), d.log()
    assert listing(d.port) == ["other"]


def test_reload_changes_listeners_and_worker_count(daemon):
    d = daemon(workers=2)
    d.start()
    first = d.port
    inode = listener_inode(first)
    assert inode in socket_inodes_of(d.master)
    second = free_port()
    d.settings.pop("listen")
    d.write_config(extra_lines=["listen = 127.0.0.1:%d" % first,
                                "listen = 127.0.0.1:%d" % second],
                   workers=3)
    old = d.workers()
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2"), d.log()
    # The kept listener is the same socket (no gap); the new one answers.
    assert listener_inode(first) == inode
    assert inode in socket_inodes_of(d.master)
    assert metadata(second, "hello.txt") == len(HELLO)
    assert metadata(first, "hello.txt") == len(HELLO)
    assert len(d.wait_workers(3, exclude=old)) == 3
    # Removing the first listener closes it.
    d.write_config(extra_lines=["listen = 127.0.0.1:%d" % second])
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 3"), d.log()
    assert wait_for(lambda: refuses(first), 5 * SCALE)
    assert metadata(second, "hello.txt") == len(HELLO)


@pytest.mark.slow
def test_fifty_reloads_under_load(daemon):
    files = {"small.bin": os.urandom(200 * 1024), "ten.txt": b"0123456789",
             "empty": b""}
    d = daemon(workers=2, files=files)
    d.start()
    first = d.workers()
    fds_before = d.master_fds()
    load = Load(d.port, files, threads=4).start()
    try:
        assert wait_for(lambda: load.requests >= 20, 10 * SCALE)
        for gen in range(2, 52):
            # Alternate a setting so that consecutive configs differ.
            d.write_config(client_timeout="%ds" % (300 + gen % 2))
            if gen % 10 == 0:
                assert d.ctl("reload").returncode == 0
            else:
                os.kill(d.master, signal.SIGHUP)
            assert d.wait_log(r"configuration reloaded: generation %d\b"
                              % gen), "reload %d: %s" % (gen,
                                                         d.log()[-3000:])
            n = load.requests
            assert wait_for(lambda: load.requests > n or load.failures,
                              10 * SCALE), "load stalled after reload %d" % gen
    finally:
        stopped = load.finish()
    assert stopped, "client threads hung"
    assert not load.failures, "%d failed requests out of %d: %s" % (
        len(load.failures), load.requests, load.failures[:10])
    assert load.requests >= 100
    assert process_alive(d.master)
    # No leaked workers: exactly `workers` children (zombies included).
    assert wait_for(lambda: len(children_of(d.master)) == 2, 15 * SCALE), \
        "master children after 50 reloads: %s" % children_of(d.master)
    assert not set(children_of(d.master)) & set(first)
    # No leaked descriptors in the master.
    same = wait_for(lambda: len(d.master_fds()) == len(fds_before),
                      5 * SCALE)
    assert same, "master fds before: %s\nafter: %s" % (fds_before,
                                                       d.master_fds())
    assert not [m.group(0) for m in log_lines(d.log())
                if m.group(1) == "error"]


# -- stopping -----------------------------------------------------------------

def test_quit_waits_for_the_transfer_then_exits(daemon):
    size = 32 * MiB
    data = os.urandom(size)
    d = daemon(workers=2, files={"big.bin": data})
    d.start()
    workers = d.workers()
    gate = threading.Event()
    t = RawSlice(d.port, "big.bin", 0, data, gate=gate).start()
    try:
        assert t.started.wait(30 * SCALE) and t.error is None, t.describe()
        assert d.ctl("quit").returncode == 0
        # Listeners close at once; the master stays for the transfer.
        assert wait_for(lambda: refuses(d.port), 5 * SCALE), \
            "still accepting after QUIT"
        assert d.wait_log(r"master\[%d\] gen 1: .*(graceful|quit|stop)"
                          % d.master)
        assert process_alive(d.master)
        assert d.pid_file.exists()
        assert not t.done.is_set()
    finally:
        gate.set()
        t.join()
    assert t.ok, t.describe()
    assert wait_for(lambda: not live([d.master] + workers), 5 * SCALE), \
        "master/workers still alive after the last transfer: %s" % live(
            [d.master] + workers)
    assert not d.pid_file.exists()
    assert "exiting" in d.log()


def test_term_stops_everything_within_two_seconds(daemon):
    size = 32 * MiB
    data = os.urandom(size)
    d = daemon(workers=2, files={"big.bin": data})
    d.start()
    family = [d.master] + d.workers()
    gate = threading.Event()
    t = RawSlice(d.port, "big.bin", 0, data, gate=gate).start()
    idle = connect(d.port)
    try:
        assert t.started.wait(30 * SCALE) and t.error is None, t.describe()
        began = time.monotonic()
        os.kill(d.master, signal.SIGTERM)
        gone = wait_for(lambda: not live(family), 2 * SCALE)
        took = time.monotonic() - began
        assert gone, "alive %.1fs after SIGTERM: %s" % (took, live(family))
        assert not d.pid_file.exists()
        assert refuses(d.port)
        idle.settimeout(5)
        try:
            assert idle.recv(10) == b""
        except ConnectionResetError:
            pass
    finally:
        idle.close()
        gate.set()
        t.join()
    assert t.error is not None       # the transfer was cut, as it should be


def test_stop_and_quit_through_the_launcher(daemon):
    d = daemon()
    d.start()
    family = [d.master] + d.workers()
    assert d.ctl("quit").returncode == 0
    assert wait_for(lambda: not live(family), 5 * SCALE)
    assert not d.pid_file.exists()
    d.start()
    family = [d.master] + d.workers()
    assert d.ctl("stop").returncode == 0
    assert wait_for(lambda: not live(family), 2 * SCALE)
    assert not d.pid_file.exists()
    assert d.ctl("reload").returncode == 1


# -- logs ---------------------------------------------------------------------

def test_reopen_logs_after_rename(daemon):
    d = daemon(workers=2)
    d.start()
    assert request(d.port, b"get_metadata hello.txt\r\n") == \
        b"0 OK\r\n13\r\n0 OK\r\n"
    assert d.wait_log(r'"get_metadata hello\.txt" 0 10 \d+$',
                      path=d.access_log), d.log(d.access_log)
    for line in d.log(d.access_log).splitlines():
        assert ACCESS_LINE.match(line), line
    old_err = d.error_log.with_name("error.log.1")
    old_acc = d.access_log.with_name("access.log.1")
    os.rename(d.error_log, old_err)
    os.rename(d.access_log, old_acc)
    assert d.ctl("reopen").returncode == 0
    assert wait_for(d.error_log.exists, 5 * SCALE), "no new error log"
    # Connections made now go to workers that have reopened.
    for i in range(6):
        assert request(d.port, b"get_metadata after-reopen-%d\r\n" % i) == \
            b"202 FILE NOT FOUND\r\n0 OK\r\n"
    found = d.wait_log(r'"get_metadata after-reopen-\d" 202 ',
                       path=d.access_log, count=6)
    assert len(found) == 6, "new access log:\n%s\nold access log:\n%s" % (
        d.log(d.access_log), d.log(old_acc))
    assert "after-reopen" not in d.log(old_acc)
    # Workers write their own lines to the new error log too.
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2")
    assert d.wait_log(r"worker\[\d+\] gen 1: draining", count=2), d.log()
    assert "draining" not in d.log(old_err)
    assert "generation 2" not in d.log(old_err)
    log_lines(d.log())


def test_access_log_flushed_within_a_second_and_escaped(daemon):
    d = daemon(workers=1)
    d.start()
    c = connect(d.port)
    try:
        c.sendall(b"get_metadata hello.txt\r\nget_metadata a\x01b\r\n" +
                  b"get_slice " + b"x" * 300 + b" 0 1\r\n")
        want = b"0 OK\r\n13\r\n201 INVALID ARGUMENTS FOR COMMAND\r\n" \
               b"202 FILE NOT FOUND\r\n"
        got = b""
        while len(got) < len(want):
            got += c.recv(1000)
        assert got == want
        # Still connected: the lines must appear within ~1 s anyway.
        began = time.monotonic()
        found = d.wait_log(r'"get_slice x+', path=d.access_log,
                           timeout=3 * SCALE)
        assert found, "access log not flushed: %r" % d.log(d.access_log)
        assert time.monotonic() - began < 1.5 * SCALE
    finally:
        c.close()
    lines = d.log(d.access_log).splitlines()
    assert len(lines) == 3, lines
    ms = [ACCESS_LINE.match(ln) for ln in lines]
    assert all(ms), lines
    assert [m.group(3)[:12] for m in ms] == ["get_metadata"] * 2 + \
        ["get_slice xx"]
    assert [m.group(4) for m in ms] == ["0", "201", "202"]
    assert "\x01" not in lines[1]
    assert len(ms[2].group(3)) <= 210, "request not cut at 200 bytes"


# -- worker death -------------------------------------------------------------

def test_sigkill_worker_cuts_only_its_clients(daemon):
    size = 32 * MiB
    data = os.urandom(size)
    # 3 clients per worker: 6 transfers put exactly 3 on each worker.
    d = daemon(workers=2, clients_per_worker=3, files={"big.bin": data})
    d.start()
    workers = d.workers()
    assert len(workers) == 2
    gate = threading.Event()
    downloads = []
    for _ in range(6):
        t = RawSlice(d.port, "big.bin", 0, data, gate=gate).start()
        assert t.started.wait(30 * SCALE) and t.error is None, t.describe()
        downloads.append(t)
    try:
        owner = {t: worker_of_connection(d.port, t.local_port, workers)
                 for t in downloads}
        assert set(owner.values()) == set(workers), owner
        victim, survivor = workers
        began = time.monotonic()
        d.kill(victim)
        now = d.wait_workers(2, timeout=1.0 * SCALE, exclude=[victim])
        took = time.monotonic() - began
        assert len(now) == 2 and victim not in now and survivor in now, (
            "no replacement %.2fs after the kill: %s" % (took, now))
        assert d.wait_log(r"worker \d \(pid %d\) killed by signal 9; "
                          r"replacing it" % victim), d.log()
    finally:
        gate.set()
        for t in downloads:
            t.join()
    for t in downloads:
        if owner[t] == victim:
            assert t.error is not None and t.received < size, t.describe()
        else:
            assert t.ok, t.describe()
    assert process_alive(d.master) and process_alive(survivor)
    assert metadata(d.port, "big.bin") == size


def test_crash_loop_is_throttled(daemon):
    d = daemon(workers=2)
    p = d.start_foreground(env={"HFTPD_TEST_HOOKS": "1",
                                "HFTPD_TEST_WORKER_EXIT": "2"})
    assert d.wait_log(r"keeps dying at start; next try in \d+ ms",
                      count=2), d.log() + d.fg_log()
    # Watch for 3 s: the master must stay up and not respawn in a tight loop.
    died = wait_for(lambda: p.poll() is not None, 3.0)
    assert not died, "master exited with %s:\n%s" % (p.returncode,
                                                     d.log() + d.fg_log())
    text = d.log()
    for i in range(2):
        starts = re.findall(r"worker %d \(pid \d+\) started" % i, text)
        assert 1 <= len(starts) <= 8, "worker %d started %d times:\n%s" % (
            i, len(starts), text)
        delays = [int(x) for x in re.findall(
            r"worker %d keeps dying at start; next try in (\d+) ms" % i,
            text)]
        assert delays and all(b >= a for a, b in zip(delays, delays[1:])), \
            delays
        assert max(delays) <= 10000
    assert re.search(r"exited with status 2", text)
    if not VALGRIND:
        assert cpu_seconds(p.pid) < 1.0
    p.send_signal(signal.SIGTERM)
    assert p.wait(5 * SCALE) == 0


# -- privileges, systemd ------------------------------------------------------

@pytest.fixture
def open_tmp():
    """A temporary folder every user can traverse (tmp_path is 0700)."""
    path = tempfile.mkdtemp(prefix="hftpd-priv-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("log_dir_owner", ["nobody", "root"])
def test_workers_drop_privileges(daemon, open_tmp, log_dir_owner):
    """user = nobody: workers run as nobody, the master stays root; log files
    belong to nobody; a log rotation (rename + USR1) is followed both when
    the log folder belongs to the service user and when it is a root-owned
    folder like /var/log."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    d = daemon(workers=2, user="nobody")
    # Everything the workers touch lives in a folder nobody can traverse.
    base = os.path.join(open_tmp, "srv")
    make_tree(base + "/data", {"hello.txt": HELLO})
    os.mkdir(base + "/log")
    for path in (base, base + "/data", base + "/log"):
        os.chmod(path, 0o755)
    os.chmod(base + "/data/hello.txt", 0o644)
    if log_dir_owner == "nobody":
        os.chown(base + "/log", nobody.pw_uid, nobody.pw_gid)
    d.error_log = Path(base, "log", "error.log")
    d.access_log = Path(base, "log", "access.log")
    d.write_config(directory=base + "/data", error_log=d.error_log,
                   access_log=d.access_log)
    d.start()
    assert open("/proc/%d/status" % d.master).read().count("\nUid:\t0\t")
    for w in d.workers():
        status = open("/proc/%d/status" % w).read()
        uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        gid = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        assert {int(x) for x in uid.groups()} == {nobody.pw_uid}, status
        assert {int(x) for x in gid.groups()} == {nobody.pw_gid}, status
        groups = re.search(r"^Groups:(.*)$", status, re.M).group(1).split()
        assert "0" not in groups, status
    assert metadata(d.port, "hello.txt") == len(HELLO)
    assert d.wait_log(r'"get_metadata hello.txt"', path=d.access_log)
    assert os.stat(d.access_log).st_uid == nobody.pw_uid
    assert os.stat(d.error_log).st_uid == nobody.pw_uid
    # Log rotation: rename both, reopen; the new files get the new lines.
    os.rename(d.access_log, base + "/log/access.log.1")
    os.rename(d.error_log, base + "/log/error.log.1")
    assert d.ctl("reopen").returncode == 0
    assert wait_for(d.error_log.exists, 5 * SCALE)
    for _ in range(4):
        assert metadata(d.port, "hello.txt") == len(HELLO)
    assert d.wait_log(r'"get_metadata hello.txt"', path=d.access_log,
                      count=4, timeout=3 * SCALE), "new access log %r; error log:\n%s" % (
        d.log(d.access_log), d.log() + d.log(base + "/log/error.log.1"))
    assert os.stat(d.access_log).st_uid == nobody.pw_uid
    assert os.stat(d.error_log).st_uid == nobody.pw_uid
    assert "error" not in " ".join(m.group(1) for m in log_lines(d.log()))
    assert "warn" not in " ".join(m.group(1) for m in log_lines(d.log())), \
        d.log()


def test_sd_notify(daemon, open_tmp):
    d = daemon(workers=1)
    path = os.path.join(open_tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10 * SCALE)

    def messages_until(word):
        got = []
        while True:
            msg = sock.recv(4096).decode()
            got.append(msg)
            if word in msg.split("\n"):
                return got
    try:
        p = d.start_foreground(env={"NOTIFY_SOCKET": path})
        assert "READY=1" in messages_until("READY=1")[-1].split("\n")
        assert metadata(d.port, "hello.txt") == len(HELLO)
        os.kill(p.pid, signal.SIGHUP)
        got = messages_until("READY=1")
        first = got[0].split("\n")
        assert "RELOADING=1" in first, got
        assert any(re.fullmatch(r"MONOTONIC_USEC=\d+", f) for f in first), got
        assert d.wait_log(r"configuration reloaded: generation 2")
        d.write_config(extra_lines=["bogus = 1"])
        os.kill(p.pid, signal.SIGHUP)
        got = messages_until("READY=1")
        assert "RELOADING=1" in got[0].split("\n"), got
        assert any(ln.startswith("STATUS=") and "fail" in ln
                   for ln in got[-1].split("\n")), got
        os.kill(p.pid, signal.SIGQUIT)
        assert "STOPPING=1" in messages_until("STOPPING=1")[-1].split("\n")
        assert p.wait(10 * SCALE) == 0
    finally:
        sock.close()
