"""The command line client: python3 -m hftp HOST[:PORT] ls|stat|get|cat|help."""

import os
import subprocess
import sys

import pytest

from conftest import CLIENT_DIR, SCALE, free_port, have_ipv6_loopback

DATA = bytes(range(256)) * 4000 + b"\r\n\x00end"


def hftp_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(CLIENT_DIR))
    return subprocess.run([sys.executable, "-m", "hftp"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, cwd=cwd, timeout=30 * SCALE)


@pytest.fixture
def cli_server(hftpd):
    return hftpd(files={"bin.dat": DATA, "a.txt": b"hello\n", "empty": b""})


def addr(srv):
    return "%s:%d" % (srv.host, srv.port)


def test_ls(cli_server):
    r = hftp_cli(addr(cli_server), "ls")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a.txt\nbin.dat\nempty\n"


def test_stat(cli_server):
    r = hftp_cli(addr(cli_server), "stat", "bin.dat")
    assert (r.returncode, r.stdout) == (0, b"%d\n" % len(DATA))


def test_get_to_file_and_default_name(cli_server, tmp_path):
    out = tmp_path / "copy"
    r = hftp_cli(addr(cli_server), "get", "bin.dat", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    r = hftp_cli(addr(cli_server), "--raw", "get", "bin.dat", "--chunk", "10000",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "bin.dat").read_bytes() == DATA
    r = hftp_cli(addr(cli_server), "get", "empty", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "empty").read_bytes() == b""


def test_cat_binary(cli_server):
    r = hftp_cli(addr(cli_server), "cat", "bin.dat")
    assert r.returncode == 0, r.stderr
    assert r.stdout == DATA


def test_help(cli_server):
    r = hftp_cli(addr(cli_server), "help")
    assert r.stdout.split() == [b"get_file_listing", b"get_metadata",
                                b"get_slice", b"help", b"quit"]


def test_error_status(cli_server, tmp_path):
    # Errors name the file and the server.
    r = hftp_cli(addr(cli_server), "stat", "missing")
    assert r.returncode == 1
    assert r.stderr.strip() == (b"hftp: missing: 202 FILE NOT FOUND on %s"
                                % addr(cli_server).encode())
    r = hftp_cli(addr(cli_server), "cat", "../etc/passwd")
    assert r.returncode == 1
    assert r.stderr.strip() == (b"hftp: ../etc/passwd: 201 INVALID ARGUMENTS "
                                b"FOR COMMAND on %s" % addr(cli_server).encode())
    out = tmp_path / "out"
    out.mkdir()
    r = hftp_cli(addr(cli_server), "get", "missing", cwd=out)
    assert r.returncode == 1
    assert os.listdir(out) == []        # no partial file left behind


def test_connection_refused():
    r = hftp_cli("127.0.0.1:%d" % free_port(), "ls")
    assert r.returncode == 5            # network error (2 is usage)
    assert b"refused" in r.stderr.lower()
    assert b"Traceback" not in r.stderr


def test_usage_error():
    r = hftp_cli("127.0.0.1")
    assert r.returncode == 2
    r = hftp_cli("[::1", "ls")
    assert r.returncode == 2


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_address_form(hftpd):
    srv = hftpd(host="::1", files={"x": b"xyz"})
    r = hftp_cli("[::1]:%d" % srv.port, "cat", "x")
    assert (r.returncode, r.stdout) == (0, b"xyz"), r.stderr
