"""Configuration file, command line, listeners (IPv4/IPv6) and limits."""

import os
import re
import socket
import time

import pytest

from conftest import (HELP_RESPONSE, SCALE, ST, assert_usable, converse,
                      free_port, have_ipv6_loopback, run_hftpd)
import hftp


def write_conf(tmp_path, lines, name="hftpd.conf"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture
def datadir(tmp_path):
    d = tmp_path / "served"
    d.mkdir()
    (d / "f").write_bytes(b"hello")
    return d


def test_t_good_config(tmp_path, datadir):
    p1, p2 = free_port(), free_port()
    lines = [
        "# every key, as an operator would write them",
        "",
        "listen = 127.0.0.1:%d" % p1,
        "listen = %d" % p2,
        ("listen = [::1]:%d" % free_port("::1")) if have_ipv6_loopback()
        else "# no IPv6 here",
        "directory = %s" % datadir,
        "workers = auto",
        "clients_per_worker = 8",
        "slice_encoding = fragments",
        "request_line_max = 4K",
        "client_timeout = 5m",
    ]
    conf = write_conf(tmp_path, lines)
    # -f: what is checked is the file; a daemon's error log (syslog, else
    # /var/log/hftpd, which only root may create) is test_ops_cli's
    r = run_hftpd(["-t", "-f", "-c", str(conf)], tmp_path)
    assert r.returncode == 0, r.stderr_text
    for variant in (["workers = 3", "slice_encoding = base64",
                     "request_line_max = 16M", "client_timeout = 30s"],
                    ["request_line_max = 1G", "client_timeout = 1h"],
                    ["client_timeout = 300", "request_line_max = 1048576"]):
        conf = write_conf(tmp_path, ["directory = %s" % datadir,
                                     "listen = 127.0.0.1:%d" % p1] + variant,
                          "v.conf")
        r = run_hftpd(["-t", "-f", "-c", str(conf)], tmp_path)
        assert r.returncode == 0, (variant, r.stderr_text)


def test_t_command_line_only(tmp_path, datadir):
    r = run_hftpd(["-t", "-f", "-d", str(datadir), "-p", str(free_port()),
                   "-a", "127.0.0.1", "-w", "2", "-n", "4"], tmp_path)
    assert r.returncode == 0, r.stderr_text


BAD = [
    ("frobnicate = 1", "unknown-key"),
    ("this line has no equals sign", "no-equals"),
    ("workers = many", "workers-word"),
    ("workers = -1", "workers-negative"),
    ("workers = 1x", "workers-suffix"),
    ("clients_per_worker = abc", "cpw-word"),
    ("clients_per_worker = -5", "cpw-negative"),
    ("slice_encoding = hex", "encoding"),
    ("slice_encoding =", "encoding-empty"),
    ("request_line_max = 12Q", "rlm-suffix"),
    ("request_line_max = -1", "rlm-negative"),
    ("request_line_max = K", "rlm-no-digits"),
    ("client_timeout = 5x", "timeout-suffix"),
    ("client_timeout = soon", "timeout-word"),
    ("client_timeout = -3s", "timeout-negative"),
    ("listen = 1.2.3.4.5:80", "listen-bad-ip"),
    ("listen = 127.0.0.1:99999", "listen-port-range"),
    ("listen = 127.0.0.1:", "listen-no-port"),
    ("listen = [::1", "listen-bracket"),
    ("listen = 127.0.0.1:abc", "listen-port-word"),
    ("listen = 70000", "listen-bare-port-range"),
    ("listen =", "listen-empty"),
]


@pytest.mark.parametrize("bad_line", [b[0] for b in BAD], ids=[b[1] for b in BAD])
def test_t_bad_config_names_file_and_line(tmp_path, datadir, bad_line):
    lines = ["# comment", "", "directory = %s" % datadir,
             "listen = 127.0.0.1:%d" % free_port(), bad_line, "workers = 1"]
    conf = write_conf(tmp_path, lines)
    r = run_hftpd(["-t", "-c", str(conf)], tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr_text)
    assert re.search(r"hftpd: .*%s:5: \S" % re.escape(str(conf)),
                     r.stderr_text), r.stderr_text


@pytest.mark.parametrize("key,v1,v2", [
    ("directory", None, None), ("workers", "2", "3"),
    ("slice_encoding", "base64", "fragments"), ("client_timeout", "1m", "2m"),
    ("request_line_max", "1K", "2K"), ("clients_per_worker", "4", "4"),
])
def test_t_duplicate_single_valued_key(tmp_path, datadir, key, v1, v2):
    v1 = v1 or str(datadir)
    v2 = v2 or str(datadir)
    lines = ["%s = %s" % (key, v1), "# between", "%s = %s" % (key, v2)]
    if key != "directory":
        lines.insert(0, "directory = %s" % datadir)
    conf = write_conf(tmp_path, lines)
    bad = len(lines)
    r = run_hftpd(["-t", "-c", str(conf)], tmp_path)
    assert r.returncode == 1, r.stderr_text
    assert "%s:%d:" % (conf, bad) in r.stderr_text, r.stderr_text


def test_bad_config_at_startup_exits_1(tmp_path, datadir):
    conf = write_conf(tmp_path, ["directory = %s" % datadir, "nope = 1"])
    r = run_hftpd(["-f", "-c", str(conf)], tmp_path)
    assert r.returncode == 1
    assert "%s:2:" % conf in r.stderr_text


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nowhere.conf"
    r = run_hftpd(["-t", "-c", str(missing)], tmp_path)
    assert r.returncode == 1
    assert str(missing) in r.stderr_text


def test_missing_directory_at_startup(tmp_path):
    missing = tmp_path / "no-such-dir"
    r = run_hftpd(["-f", "-d", str(missing), "-a", "127.0.0.1",
                   "-p", str(free_port()), "-w", "1"], tmp_path)
    assert r.returncode > 0, "exit status %d (a signal is a crash)" % r.returncode
    assert str(missing) in r.stderr_text or "no-such-dir" in r.stderr_text, \
        r.stderr_text
    assert not re.search(r"(?i)segmentation|core dumped|assert", r.stderr_text)


def test_usage_and_version(tmp_path):
    r = run_hftpd(["-h"], tmp_path)
    assert r.returncode == 0
    assert "-d" in r.stdout_text + r.stderr_text
    r = run_hftpd(["-V"], tmp_path)
    assert r.returncode == 0
    assert "hftpd" in r.stdout_text + r.stderr_text
    r = run_hftpd(["-Z"], tmp_path)
    assert r.returncode != 0


def test_relative_directory_resolves_against_config_folder(hftpd, tmp_path):
    # The server runs with cwd = this test folder, not tmp_path.
    srv = hftpd(files={"rel.txt": b"relative"}, directory=tmp_path / "reldata",
                config=["directory = reldata"])
    with srv.client() as c:
        assert c.listing() == ["rel.txt"]
    (tmp_path / "sub").mkdir()
    srv2 = hftpd(files={"up.txt": b"u"}, directory=tmp_path / "updata",
                 config=["directory = ./sub/../updata"])
    with srv2.client() as c:
        assert c.listing() == ["up.txt"]


def test_command_line_listener_replaces_config_listen(hftpd):
    p_conf, p_cli = free_port(), free_port()
    srv = hftpd(config=["listen = 127.0.0.1:%d" % p_conf], port=p_cli,
                args=["-a", "127.0.0.1", "-p", str(p_cli)])
    with srv.client() as c:
        assert c.metadata("ten.txt") == 10
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p_conf), timeout=2).close()


def test_several_listeners(hftpd):
    p1, p2 = free_port(), free_port()
    lines = ["listen = 127.0.0.1:%d" % p1, "listen = 127.0.0.1:%d" % p2]
    srv = hftpd(config=lines, port=p1)
    for p in (p1, p2):
        with hftp.Client("127.0.0.1", p) as c:
            assert c.metadata("archivo.txt") == 41


needs_ipv6 = pytest.mark.skipif(not have_ipv6_loopback(),
                                reason="host has no IPv6 loopback")


@needs_ipv6
def test_ipv6_listener_via_config(hftpd):
    srv = hftpd(host="::1", config={"slice_encoding": "base64"})
    assert srv.config_path.read_text().count("listen = [::1]:%d" % srv.port) == 1
    c = converse(srv, b"get_slice archivo.txt 5 20\r\n",
                 b"0 OK\r\nY2Fsb3IgcXVlIGhhY2UgaG95LCA=\r\n")
    assert_usable(c)
    assert c.sock.family == socket.AF_INET6
    with hftp.Client("::1", srv.port) as c2:
        assert c2.listing() == ["archivo.txt", "empty", "ten.txt"]
    # Only ::1 is bound.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


@needs_ipv6
def test_ipv4_and_ipv6_listeners_together(hftpd):
    p4, p6 = free_port(), free_port("::1")
    srv = hftpd(config=["listen = 127.0.0.1:%d" % p4, "listen = [::1]:%d" % p6],
                port=p4)
    for host, port in (("127.0.0.1", p4), ("::1", p6)):
        with hftp.Client(host, port) as c:
            assert c.slice("ten.txt", 2, 3, raw=True) == b"234"


@needs_ipv6
def test_ipv6_listener_via_command_line(hftpd):
    srv = hftpd(host="::1")
    with srv.client() as c:
        assert c.metadata("ten.txt") == 10


def test_idle_client_timeout(hftpd):
    srv = hftpd(config={"client_timeout": "1s"})
    idle = srv.client(timeout=10 * SCALE)
    partial = srv.client(timeout=10 * SCALE)
    partial.send_raw(b"get_meta")
    busy = srv.client(timeout=10 * SCALE)
    t0 = time.monotonic()
    # A client that keeps sending requests stays connected.
    while time.monotonic() - t0 < 2.0:
        assert busy.metadata("ten.txt") == 10
        time.sleep(0.25)
    # The idle ones were closed silently: no bytes, then EOF.
    assert idle.read_all() == b""
    assert partial.read_all() == b""
    assert time.monotonic() - t0 < 6 * SCALE
    assert_usable(busy)


def test_client_owed_bytes_is_not_idle(hftpd):
    # docs/PROTOCOL.md, limits: idle time is "no request bytes arriving AND nothing
    # owed to the client"; owed bytes are never dropped.  A client that
    # pauses reading a large slice for longer than client_timeout is owed
    # bytes, so it is not idle and gets the whole body when it resumes.
    srv = hftpd(config={"client_timeout": "1s"})
    (srv.directory / "huge").write_bytes(b"")
    os.truncate(srv.directory / "huge", 256 << 20)
    owed = srv.client(timeout=10 * SCALE)
    owed.send_raw(b"get_slice huge 0 %d raw\r\n" % (256 << 20))
    time.sleep(2.5)
    head = b"0 OK\r\nContent-Length: %d\r\n\r\n" % (256 << 20)
    assert owed.read_exact(len(head)) == head
    assert owed.read_exact(16 << 20) == bytes(16 << 20)


def test_idle_timeout_suffix_minutes(hftpd):
    srv = hftpd(config={"client_timeout": "1m"})
    c = srv.client()
    time.sleep(1.5)
    assert_usable(c)


@pytest.mark.slow
def test_workers_auto(hftpd):
    srv = hftpd(workers=None, config={"workers": "auto"})
    n = len(srv.wait_workers(os.cpu_count()))
    assert n in (os.cpu_count(), len(os.sched_getaffinity(0)))


def test_clients_per_worker_from_config(hftpd):
    srv = hftpd(workers=1, config={"clients_per_worker": "1"})
    a = srv.client()
    assert a.metadata("ten.txt") == 10
    b = srv.client(timeout=1)
    b.send_raw(b"help\r\n")
    assert b.read_at_most(len(HELP_RESPONSE)) == b""      # waits its turn
    a.quit()
    b.sock.settimeout(5 * SCALE)
    assert b.read_at_most(len(HELP_RESPONSE)) == HELP_RESPONSE
