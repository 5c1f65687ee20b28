"""Privilege separation as the workers see it: a worker holds only the
descriptors on its list (docs/DESIGN.md: its channel, the error and access
logs, the served directory, stdin/stdout/stderr; never the pid file, a
listener or another worker's channel), at start, after a reload, a reopen
and a respawn; the master opens the logs and passes them, so a chrooted
worker keeps both across a rotation; the access log never gets a torn line,
even when its file system fills up (every line in the file is whole; the
loss is counted and warned once).

Needs root (workers drop to nobody, chroot, mount); skipped otherwise.
"""

import os
import pwd
import re
import subprocess

import pytest

from conftest import (HFTPD_BIN, SCALE, VALGRIND, connect, listener_inode,
                      request, wait_for)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

ACCESS_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 127\.0\.0\.1:\d+ "[^"]*" \d+ \d+ \d+$')

META = b"get_metadata hello.txt\r\n"
META_ANSWER = b"0 OK\r\n13\r\n"


def pipelined(port, line, answer, count):
    """count copies of line on one connection; reads every answer."""
    want = len(answer) * count
    with connect(port) as s:
        s.sendall(line * count + b"quit\r\n")
        got = b""
        while len(got) < want:
            data = s.recv(65536)
            if not data:
                break
            got += data
    assert got[:want] == answer * count, got[-200:]


def valgrinds_own(fd, link):
    """Under valgrind: a descriptor of the tool's (its log, its copy of the
    program, its files in /tmp, its reserved range high up)."""
    # (its files by their own names: `make valgrind`'s temp folder, which
    # holds the served directory, has "valgrind" in its path too)
    return VALGRIND and (fd >= 1000 or "/toollogs/" in link or
                         "valgrind" in os.path.basename(link) or
                         "/lib/valgrind/" in link or "/libexec/valgrind/" in link or
                         link == os.path.realpath(HFTPD_BIN))


def fds_of(pid):
    """{fd: (link, flags)} of pid (valgrind's own left out)."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            link = os.readlink("%s/%s" % (d, name))
            info = open("/proc/%d/fdinfo/%s" % (pid, name)).read()
        except OSError:
            continue
        flags = int(re.search(r"^flags:\s+(\d+)", info, re.M).group(1), 8)
        if not valgrinds_own(int(name), link):
            out[int(name)] = (link, flags)
    return out


def unix_socket_inodes():
    with open("/proc/net/unix") as f:
        return {int(line.split()[6]) for line in f.read().splitlines()[1:]
                if len(line.split()) >= 7}


def outside_the_list(d, pid):
    """What worker pid holds beyond its list; [] when nothing."""
    logs = {str(d.error_log), str(d.access_log)}
    listener = "socket:[%s]" % listener_inode(d.port)
    unix = unix_socket_inodes()
    wrong, sockets, inotify, kept = [], 0, 0, 0
    for fd, (link, flags) in sorted(fds_of(pid).items()):
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m and link != listener and int(m.group(1)) in unix:
            sockets += 1                    # its channel
        elif fd in (0, 1, 2) and link == "/dev/null":
            pass                            # a daemon's stdio
        elif link in logs and flags & 3 == os.O_WRONLY and flags & os.O_APPEND:
            logs.discard(link)              # each log once, append only
        elif link == str(d.directory) and flags & 3 == os.O_RDONLY:
            pass                            # the served directory
        elif link == "anon_inode:inotify":
            inotify += 1                    # metadata_cache's watches
        elif (os.path.dirname(link) == str(d.directory) and
              flags & 3 == os.O_RDONLY):
            kept += 1                       # files metadata_cache keeps open
        else:
            wrong.append("fd %d -> %s (flags %o)" % (fd, link, flags))
    if sockets != 1:
        wrong.append("%d unix sockets, not one channel" % sockets)
    if inotify > 1 or kept > 4:
        wrong.append("%d inotify descriptors (at most 1), %d files kept open "
                     "(at most 4)" % (inotify, kept))
    return wrong


def assert_workers_hold_only_their_list(d, workers):
    """Once a worker has set up (it holds the served directory: root
    dropped, so the name-service look-ups of the drop are over), nothing
    outside its list may show; a client socket of a request just answered
    may take a moment to close."""
    for w in workers:
        assert wait_for(lambda: any(link == str(d.directory) for link, _
                                    in fds_of(w).values()), 10 * SCALE), w
        seen = []

        def clean():
            seen[:] = outside_the_list(d, w)
            return not seen
        assert wait_for(clean, 5 * SCALE), (w, seen)


def test_workers_hold_only_what_they_need(daemon):
    d = daemon(workers=2)
    d.start()
    assert str(d.pid_file) in [v for v in d.master_fds().values()]
    assert request(d.port, META + b"quit\r\n").startswith(META_ANSWER)
    first = d.wait_workers(2)
    assert len(first) == 2
    assert_workers_hold_only_their_list(d, first)

    # a reopen replaces the logs in place
    os.rename(d.access_log, d.access_log.with_name("access.log.1"))
    assert d.ctl("reopen").returncode == 0
    assert wait_for(d.access_log.exists, 5 * SCALE)
    assert request(d.port, META + b"quit\r\n").startswith(META_ANSWER)
    assert_workers_hold_only_their_list(d, first)

    # a new generation
    assert d.ctl("reload").returncode == 0
    second = d.wait_workers(2, exclude=first)
    assert len(second) == 2 and not set(second) & set(first), (first, second)
    assert_workers_hold_only_their_list(d, second)

    # a respawned worker
    d.kill(second[0])
    third = d.wait_workers(2, exclude=[second[0]])
    assert len(third) == 2, third
    new = [w for w in third if w != second[1]]
    assert_workers_hold_only_their_list(d, new)


def test_descriptors_the_launcher_left_open_are_closed(daemon):
    """A launcher that leaks a descriptor (a shell's, a CI runner's pipe):
    neither the master nor a worker keeps it."""
    d = daemon(workers=2)
    r, w = os.pipe()
    try:
        argv, env = d.command("-c", str(d.conf))
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           env=env, pass_fds=(w,), timeout=30 * SCALE)
        assert p.returncode == 0, p.stderr
        d.note_pid_file()
        d.master = d.read_pid()
        leaked = "pipe:[%d]" % os.fstat(w).st_ino
        workers = d.wait_workers(2)
        assert len(workers) == 2
        for pid in [d.master] + workers:
            assert leaked not in [link for link, _ in fds_of(pid).values()], pid
        # the launcher has exited and nothing else holds the write end
        os.close(w)
        w = -1
        assert os.read(r, 1) == b""
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_chrooted_workers_keep_their_logs_across_a_rotation(daemon):
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    d = daemon(workers=1, user="nobody", chroot="yes")
    d.start()
    w = d.wait_workers(1)[0]
    assert os.readlink("/proc/%d/root" % w) == str(d.directory)
    for i in range(3):
        assert request(d.port, b"get_metadata before-%d\r\n" % i) != b""
    assert len(d.wait_log(r'"get_metadata before-\d" 202 ', count=3,
                          path=d.access_log)) == 3, d.log()
    old_acc = d.access_log.with_name("access.log.1")
    old_err = d.error_log.with_name("error.log.1")
    os.rename(d.access_log, old_acc)
    os.rename(d.error_log, old_err)
    assert d.ctl("reopen").returncode == 0
    assert wait_for(d.access_log.exists, 5 * SCALE)
    for i in range(3):
        assert request(d.port, b"get_metadata after-%d\r\n" % i) != b""
    assert len(d.wait_log(r'"get_metadata after-\d" 202 ', count=3,
                          path=d.access_log)) == 3, d.log(old_err)
    assert "after-" not in d.log(old_acc)
    # the worker's own lines go to the new error log too
    master = d.master
    assert d.ctl("quit").returncode == 0
    assert wait_for(lambda: not os.path.exists("/proc/%d" % master),
                    10 * SCALE)
    assert re.search(r"info worker\[%d\] gen 1: draining" % w, d.log()), \
        d.log()
    assert "No such file" not in d.log(old_err) + d.log()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs, unmounted at teardown; skips if mount is refused."""
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                        "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.slow
def test_access_log_on_a_full_file_system_has_only_whole_lines(small_tmpfs,
                                                               daemon):
    access = small_tmpfs / "access.log"
    d = daemon(workers=1, access_log=access)
    d.start()
    # ~70 bytes a line: 64 KiB of file, then 64 KiB of the worker's buffer,
    # then lines are dropped
    for _ in range(6):
        pipelined(d.port, META, META_ANSWER, 500)
    assert d.wait_log(r"warn worker.*access_log %s: " % re.escape(str(access)))
    master = d.master
    assert d.ctl("quit").returncode == 0
    assert wait_for(lambda: not os.path.exists("/proc/%d" % master),
                    10 * SCALE)
    text = access.read_bytes().decode()
    assert text.endswith("\n"), repr(text[-200:])
    lines = text.splitlines()
    assert len(lines) > 500, len(lines)
    for line in lines:
        assert ACCESS_LINE.match(line), line
    # warned once, when the episode began
    assert len(re.findall(r"lines wait in memory", d.log())) == 1, d.log()
    lost = d.wait_log(r"access_log %s: (\d+) lines were lost"
                      % re.escape(str(access)))
    assert lost and int(lost[0]) > 0, d.log()[-2000:]
    # every line is either in the file or counted lost (each quit has one)
    assert len(lines) + int(lost[0]) == 3000 + 6, (len(lines), lost)
