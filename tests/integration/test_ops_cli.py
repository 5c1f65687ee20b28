"""Operating hftpd like nginx: -t catches every start-up failure short of
binding (one test each), -T prints the effective configuration, -s reload
checks first and exits 1 with FILE:LINE, --help/--version, process titles,
socket activation (the descriptors passed as systemd passes them, through
systemd-socket-activate), and a daemon with no syslog keeps its log.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (HFTPD_BIN, SCALE, VALGRIND, free_port, listener_inode,
                      request, wait_for)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0").replace(b"\0", b" ").decode()


# -- -t: one test per start-up failure ----------------------------------------

def check_fails(d, pattern, **changes):
    """With changes, -t fails with pattern on stderr, and so does start-up."""
    d.write_config(**changes)
    t = d.run("-t", "-c", str(d.conf))
    assert t.returncode == 1, t.out + t.err
    assert re.search(pattern, t.err), t.err
    s = d.run("-c", str(d.conf))
    assert s.returncode == 1 and re.search(pattern, s.err), s.err
    assert d.read_pid() is None


def test_t_ok(daemon):
    d = daemon()
    r = d.run("-t", "-c", str(d.conf))
    assert r.returncode == 0 and "is ok" in r.out, r.err


def test_t_directory_missing(daemon):
    d = daemon()
    check_fails(d, r"directory .*nope: No such file", directory=d.root / "nope")


def test_t_directory_not_a_directory(daemon):
    d = daemon()
    check_fails(d, r"directory .*hello.txt: not a directory",
                directory=d.directory / "hello.txt")


def test_t_error_log_folder_missing(daemon):
    d = daemon()
    check_fails(d, r"error_log .*/nolog/error.log: folder .*: No such file",
                error_log=d.root / "nolog" / "error.log")


def test_t_access_log_folder_missing(daemon):
    d = daemon()
    check_fails(d, r"access_log .*/nolog/access.log: folder .*: No such file",
                access_log=d.root / "nolog" / "access.log")


def test_t_log_is_a_folder(daemon):
    d = daemon()
    check_fails(d, r"access_log .*: Is a directory", access_log=d.directory)


def test_t_user_missing(daemon):
    d = daemon()
    check_fails(d, r"user 'no-such-user-x': no such user", user="no-such-user-x")


def test_t_group_missing(daemon):
    d = daemon()
    check_fails(d, r"group 'no-such-group-x': no such group",
                user="root", group="no-such-group-x")


def test_t_listen_does_not_parse(daemon):
    d = daemon()
    check_fails(d, r"hftpd.conf:\d+: listen '1.2.3:80'", listen="1.2.3:80")


def test_t_pid_folder_missing(daemon):
    d = daemon()
    check_fails(d, r"pid_file .*/norun/hftpd.pid: folder .*: No such file",
                pid_file=d.root / "norun" / "hftpd.pid")


# -- -T -------------------------------------------------------------------------

def test_T_prints_every_key(daemon):
    d = daemon()
    r = d.run("-T", "-c", str(d.conf))
    assert r.returncode == 0, r.err
    keys = {}
    for line in r.out.splitlines():
        m = re.match(r"^(\w+)\s+= (.*?)\s+# (.*)$", line)
        if m:
            keys.setdefault(m.group(1), (m.group(2), m.group(3)))
    for k in ("listen", "directory", "workers", "clients_per_worker",
              "slice_encoding", "request_line_max", "client_timeout",
              "pid_file", "error_log", "access_log", "log_level", "user",
              "group", "chroot", "shutdown_timeout", "send_timeout",
              "send_min_rate", "limit_rate"):
        assert k in keys, (k, r.out)
    assert keys["workers"][0] == "2"
    assert re.fullmatch(r".*hftpd.conf:\d+", keys["workers"][1]), keys
    assert keys["clients_per_worker"] == ("8192", "default")
    assert keys["chroot"] == ("no", "default")
    assert "is ok" in r.out


def test_T_fails_like_t(daemon):
    d = daemon()
    d.write_config(directory=d.root / "nope")
    r = d.run("-T", "-c", str(d.conf))
    assert r.returncode == 1 and "nope" in r.err and "listen" not in r.out


# -- -s reload -------------------------------------------------------------------

def test_reload_with_bad_config_exits_1_and_sends_nothing(daemon):
    d = daemon()
    d.start()
    last = d.write_config(extra_lines=["bogus_key = 1"])
    r = d.ctl("reload")
    assert r.returncode == 1
    assert re.search(r"hftpd.conf:%d: unknown key 'bogus_key'" % last, r.err)
    # a start-up failure that only the checks see
    d.write_config(extra_lines=[])
    d.write_config(error_log=d.root / "nolog" / "e.log")
    r = d.ctl("reload")
    assert r.returncode == 1 and "nolog" in r.err, r.err
    time.sleep(0.3 * SCALE)
    assert "reloading configuration" not in d.log()
    d.write_config(error_log=d.error_log)
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2")


# -- command line --------------------------------------------------------------

def test_help_and_version(tmp_path):
    for args in (["--help"], ["-h"]):
        r = subprocess.run([HFTPD_BIN] + args, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("usage: hftpd")
        assert "hftpd.conf(5)" in r.stdout
    for args in (["--version"], ["-V"]):
        r = subprocess.run([HFTPD_BIN] + args, capture_output=True, text=True)
        assert r.returncode == 0
        assert re.match(r"hftpd \d+\.\d+\.\d+\n", r.stdout)
        assert re.search(r"^base64: (avx512vbmi|avx2|ssse3|scalar)", r.stdout, re.M)
        assert re.search(r"^config file: /\S+/hftpd.conf$", r.stdout, re.M)
        assert re.search(r"^built by: \S+", r.stdout, re.M)
    r = subprocess.run([HFTPD_BIN, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 1 and "usage" in r.stderr


# -- process titles ------------------------------------------------------------

# valgrind's guest argv is not the process's argument area
titles = pytest.mark.skipif(VALGRIND, reason="titles are not visible under valgrind")


@titles
def test_process_titles(daemon):
    d = daemon(workers=2)
    d.start()
    ws = d.wait_workers(2)
    assert cmdline(d.master) == "hftpd: master process -c %s" % d.conf
    for w in ws:
        assert cmdline(w) == "hftpd: worker process (gen 1)"
    assert d.ctl("reload").returncode == 0
    new = d.wait_workers(2, exclude=ws)
    for w in new:
        assert wait_for(lambda: cmdline(w) == "hftpd: worker process (gen 2)",
                        5 * SCALE)


@titles
def test_draining_title(daemon):
    d = daemon(workers=1)
    d.start()
    (old,) = d.wait_workers(1)
    # a client holds the old worker while it drains
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"help\r\n")
    s.recv(100)
    assert d.ctl("reload").returncode == 0
    assert wait_for(lambda: process_title(old) ==
                    "hftpd: worker process (gen 1, draining)", 5 * SCALE), \
        process_title(old)
    s.close()


def process_title(pid):
    try:
        return cmdline(pid)
    except OSError:
        return None


# -- socket activation -----------------------------------------------------------

needs_activate = pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None,
    reason="systemd-socket-activate missing (Debian package systemd)")


@needs_activate
def test_socket_activation(daemon):
    d = daemon(workers=1)
    # -f: systemd runs the foreground master; the socket is bound by
    # systemd-socket-activate and passed as fd 3 with LISTEN_FDS/LISTEN_PID.
    argv = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % d.port,
            HFTPD_BIN, "-f", "-c", str(d.conf)]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        inode = wait_for(lambda: listener_inode(d.port), 5 * SCALE)
        assert inode
        # the first connection makes systemd-socket-activate exec hftpd
        out = request(d.port, b"get_metadata hello.txt\r\n")
        assert out == b"0 OK\r\n13\r\n0 OK\r\n", out
        d.masters.add(p.pid)
        d.master = p.pid
        assert d.wait_log(r"socket activation: 127.0.0.1:%d passed as "
                          r"descriptor 3" % d.port)
        assert os.readlink("/proc/%d/fd/3" % p.pid) == "socket:[%d]" % inode
        assert "LISTEN_FDS" not in open("/proc/%d/environ" % d.wait_workers(1)[0],
                                        "rb").read().decode(errors="replace")
        # kept across reloads, also one that drops and re-adds the line
        os.kill(p.pid, signal.SIGHUP)
        assert d.wait_log(r"configuration reloaded: generation 2")
        assert listener_inode(d.port) == inode
        other = free_port()
        d.write_config(listen="127.0.0.1:%d" % other)
        os.kill(p.pid, signal.SIGHUP)
        assert d.wait_log(r"configuration reloaded: generation 3")
        assert d.wait_log(r"no longer named: kept for a later reload")
        assert listener_inode(d.port) == inode
        d.write_config(listen="127.0.0.1:%d" % d.port)
        os.kill(p.pid, signal.SIGHUP)
        assert d.wait_log(r"configuration reloaded: generation 4")
        assert listener_inode(d.port) == inode
        assert request(d.port, b"get_metadata hello.txt\r\n") == \
            b"0 OK\r\n13\r\n0 OK\r\n"
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.wait(10 * SCALE)


def test_listen_pid_of_another_process_is_ignored(daemon):
    d = daemon(workers=1)
    d.start(env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    assert "socket activation" not in d.log()
    assert request(d.port, b"get_metadata hello.txt\r\n") == \
        b"0 OK\r\n13\r\n0 OK\r\n"


# -- logs are never lost -------------------------------------------------------

FALLBACK = re.compile(r"^error log without syslog: (\S+)$", re.M)


@pytest.mark.skipif(os.path.exists("/dev/log"),
                    reason="a syslog daemon listens on /dev/log here")
def test_daemon_without_syslog_logs_to_the_fallback_file(daemon):
    v = subprocess.run([HFTPD_BIN, "-V"], capture_output=True, text=True)
    fallback = Path(FALLBACK.search(v.stdout).group(1))
    if not os.access(fallback.parent.parent, os.W_OK):
        pytest.skip("cannot create %s" % fallback.parent)
    d = daemon(workers=1)
    d.write_config(error_log="stderr")
    d.start()
    master = d.master
    text = wait_for(lambda: re.findall(r"master\[%d\].*" % master,
                                       fallback.read_text(errors="replace")
                                       if fallback.exists() else ""),
                    5 * SCALE)
    assert any("no syslog daemon answers at /dev/log: logging to %s"
               % fallback in t for t in text), text
    assert any("serving" in t for t in text), text
