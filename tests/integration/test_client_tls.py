"""hftp --tls, --cafile, --tls-name and the library's tls=: through a small
TLS terminator (tls_util.TLSTerminator) in front of a plain hftpd.  Every
mismatch (unknown CA, wrong name, TLS to a plain port, plain to a TLS port,
a TLS alert, a silent port) ends in one line and a non-zero exit, promptly
and without a retry.  Then HAProxy itself: conf/haproxy-tls.cfg and the
hftpd.conf lines its comment gives, on loopback as it describes (in front
of several hosts: test_haproxy_netns.py)."""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import ssl
import threading
import time

import pytest

import hftp
from client_util import addr, hftp_run
from conftest import REPO, SCALE, free_port, wait_for
from tls_util import TLSTerminator, adapt_haproxy_cfg, haproxy_status, make_certs

MiB = 1 << 20
EXIT_PROTOCOL, EXIT_LOCAL, EXIT_NETWORK = 3, 4, 5
HAPROXY_CAP = 8                 # per-address connections, in place of 512


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def body():
    return os.urandom(9 * MiB + 321)


@pytest.fixture
def tls_server(hftpd, certs, body):
    """(hftpd, terminator): TLS on terminator.port, hftpd behind it."""
    srv = hftpd(files={"big.bin": body, "small.txt": b"hello over TLS\n"})
    term = TLSTerminator(certs, (srv.host, srv.port))
    yield srv, term
    term.close()


def tls_addr(term):
    return "127.0.0.1:%d" % term.port


def one_line_error(r):
    """The command's stderr, which must be exactly one line, no traceback."""
    err = r.stderr.decode()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def timed_run(*args, bound):
    t0 = time.monotonic()
    r = hftp_run(*args, timeout=bound)
    took = time.monotonic() - t0
    assert took < bound * SCALE, "took %.1f s" % took
    return r


def test_get_over_tls_sha256(tls_server, certs, body, tmp_path):
    _, term = tls_server
    out = tmp_path / "big.bin"
    r = hftp_run("--tls", "--cafile", certs.ca, tls_addr(term), "get",
                 "big.bin", "-o", out, "-j", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == \
        hashlib.sha256(body).hexdigest()
    # two segments, each on its own TLS connection
    assert term.handshakes >= 2 and term.failures == []
    r = hftp_run("--cafile", certs.ca, tls_addr(term), "ls")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().split()) == ["big.bin", "small.txt"]


def test_library_tls_context(tls_server, certs):
    _, term = tls_server
    ctx = hftp.tls_context(str(certs.ca))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with hftp.Client("127.0.0.1", term.port, timeout=10 * SCALE,
                     tls=ctx) as c:
        assert isinstance(c.sock, ssl.SSLSocket)
        assert c.metadata("small.txt") == 15
        assert c.slice("small.txt", 0, 15, raw=True) == b"hello over TLS\n"
        assert c.slice("small.txt", 6, 4) == b"over"
    with hftp.Client("127.0.0.1", term.port, timeout=10 * SCALE, tls=ctx,
                     tls_name="localhost") as c:
        assert sorted(c.listing()) == ["big.bin", "small.txt"]


def test_unknown_ca_fails_once_clearly(tls_server, certs, tmp_path):
    _, term = tls_server
    r = timed_run("--tls", "--cafile", certs.other_ca, tls_addr(term), "get",
                  "small.txt", "-o", tmp_path / "x", bound=15)
    assert r.returncode == EXIT_NETWORK
    err = one_line_error(r)
    assert "certificate not verified" in err and "--cafile" in err, err
    assert not (tmp_path / "x").exists()
    # not retried: a certificate does not change between tries
    assert term.accepted == 1, term.accepted
    # the system's CA store does not know the test CA either
    r = timed_run("--tls", tls_addr(term), "ls", bound=15)
    assert r.returncode == EXIT_NETWORK
    assert "certificate not verified" in one_line_error(r)


def test_wrong_name_fails_clearly(tls_server, certs):
    _, term = tls_server
    r = timed_run("--tls", "--cafile", certs.ca, "--tls-name",
                  "files.example.org", tls_addr(term), "ls", bound=15)
    assert r.returncode == EXIT_NETWORK
    err = one_line_error(r)
    assert "files.example.org" in err and "--tls-name" in err, err
    # the certificate holds localhost as well as 127.0.0.1
    r = hftp_run("--cafile", certs.ca, "--tls-name", "localhost",
                 tls_addr(term), "stat", "small.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"15\n"


def test_tls_client_on_plain_port(tls_server, certs, tmp_path):
    srv, _ = tls_server
    r = timed_run("--tls", "--cafile", certs.ca, addr(srv), "get",
                  "small.txt", "-o", tmp_path / "x", bound=15)
    assert r.returncode == EXIT_NETWORK
    err = one_line_error(r)
    assert "TLS handshake failed" in err and "TLS port" in err, err


def test_tls_client_on_proxy_protocol_port(hftpd, certs, tmp_path):
    # what a client that skips HAProxy meets: the PROXY listener closes
    # on the ClientHello, which is no PROXY header
    port = free_port()
    srv = hftpd(config=["listen = 127.0.0.1:%d proxy_protocol" % port],
                port=port)
    r = timed_run("--tls", "--cafile", certs.ca, addr(srv), "ls", bound=15)
    assert r.returncode == EXIT_NETWORK
    err = one_line_error(r)
    assert "the server closed the connection" in err and "TLS port" in err, err


def test_plain_client_on_tls_port(tls_server, tmp_path):
    _, term = tls_server
    r = timed_run(tls_addr(term), "ls", bound=15)
    assert r.returncode == EXIT_NETWORK
    err = one_line_error(r)
    assert "--tls" in err, err
    assert term.handshakes == 0 and term.failures, term.failures
    # a download retries (the close could be transient), then says the same
    r = timed_run(tls_addr(term), "get", "small.txt", "-o", tmp_path / "x",
                  "--retries", "1", bound=20)
    assert r.returncode == EXIT_NETWORK
    assert "--tls" in one_line_error(r)


def serve_once(answer):
    """A one-connection server that reads a request, sends answer (or
    nothing, with answer None) and closes; returns its port."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(30)

    def run():
        try:
            conn, _ = lsock.accept()
        except OSError:
            lsock.close()
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(4096)
                if answer:
                    conn.sendall(answer)
            except OSError:
                pass
        lsock.close()
    threading.Thread(target=run, daemon=True).start()
    return lsock.getsockname()[1]


@pytest.mark.parametrize("alert", [
    b"\x15\x03\x03\x00\x02\x02\x46",      # protocol_version
    b"\x15\x03\x01\x00\x02\x02\x0a",      # unexpected_message: ends in LF
])
def test_plain_client_sees_tls_alert(alert):
    port = serve_once(alert)
    r = timed_run("127.0.0.1:%d" % port, "ls", bound=15)
    assert r.returncode == EXIT_PROTOCOL
    err = one_line_error(r)
    assert "answered in TLS" in err and "--tls" in err, err


def test_silent_port_times_out(tmp_path):
    # A listener that never accepts: the kernel completes the TCP
    # handshake, then nothing answers the ClientHello.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        r = timed_run("--tls", "--timeout", "1", "127.0.0.1:%d" % port, "ls",
                      bound=10)
    assert r.returncode == EXIT_NETWORK
    assert "no answer in time" in one_line_error(r)


def test_tls_default_port(certs):
    # the port conf/haproxy-tls.cfg binds; whatever is (not) there, the
    # error names it
    for args in (["--tls"], ["--cafile", certs.ca], ["--tls-name", "localhost"]):
        r = timed_run(*args, "--timeout", "2", "--retries", "0", "127.0.0.1",
                      "stat", "x", bound=15)
        assert r.returncode != 0
        assert "127.0.0.1:19501" in one_line_error(r)
    # a port given wins
    r = timed_run("--tls", "--timeout", "2", "--retries", "0", "127.0.0.1:1",
                  "ls", bound=15)
    assert "127.0.0.1:1:" in one_line_error(r)


def test_bad_cafile(tmp_path, certs):
    cases = [(tmp_path / "missing.pem", "no such file"),
             (certs.key, "no CA certificate")]
    for path, text in cases:
        r = hftp_run("--cafile", path, "127.0.0.1:1", "ls")
        assert r.returncode == EXIT_LOCAL
        err = one_line_error(r)
        assert str(path) in err and text in err, err


# -- HAProxy: conf/haproxy-tls.cfg as shipped, on one machine -------------------

def documented_hftpd_lines(port, status):
    """The hftpd.conf lines conf/haproxy-tls.cfg's comment gives for HAProxy
    on the same machine, with the test's ports for 19500 and the status
    listener's 19580."""
    text = (REPO / "conf" / "haproxy-tls.cfg").read_text()
    lines = re.findall(r"(?m)^#\s+((?:listen|proxy_trusted|status_listen) = .*)$", text)
    lines = lines[:3]
    assert [ln.split()[0] for ln in lines] == ["listen", "proxy_trusted",
                                              "status_listen"], lines
    return [ln.replace(":19500", ":%d" % port).replace(":19580", ":%d" % status)
            for ln in lines]


@pytest.fixture
def haproxy_tls(hftpd, certs, body, tmp_path):
    """hftpd as the comment says, conf/haproxy-tls.cfg in front: (srv, addr)."""
    if shutil.which("haproxy") is None:
        pytest.skip("needs haproxy (tests/install-deps.sh installs it)")
    port, status = free_port(), free_port()
    log = tmp_path / "access.log"
    srv = hftpd(files={"big.bin": body}, port=port,
                config=documented_hftpd_lines(port, status) + ["access_log = %s" % log])
    srv.access_log = log
    front = free_port()
    sock = tmp_path / "admin.sock"
    cfg = tmp_path / "haproxy-tls.cfg"
    text = adapt_haproxy_cfg(
        "haproxy-tls.cfg", front, sock, "\tserver local 127.0.0.1:%d\n" % port,
        crt=certs.pem, check_port=status)
    # the per-address cap, small enough to fill here
    text, n = re.subn(r"sc0_conn_cur gt \d+", "sc0_conn_cur gt %d" % HAPROXY_CAP, text)
    assert n == 1, text
    cfg.write_text(text)
    with open(tmp_path / "haproxy.stderr", "wb") as err:
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                stdin=subprocess.DEVNULL, stdout=err,
                                stderr=err, start_new_session=True)
    try:
        assert wait_for(lambda: haproxy_status(sock) == ["UP"], 10 * SCALE), \
            (tmp_path / "haproxy.stderr").read_text()
        yield srv, "127.0.0.1:%d" % front
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_shipped_haproxy_tls_cfg(haproxy_tls, certs, body, tmp_path):
    srv, address = haproxy_tls
    out = tmp_path / "big.bin"
    r = hftp_run("--tls", "--cafile", certs.ca, address, "get", "big.bin",
                 "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == \
        hashlib.sha256(body).hexdigest()
    r = hftp_run(address, "ls")
    assert r.returncode == EXIT_NETWORK and "--tls" in one_line_error(r)
    # hftpd believed HAProxy's PROXY v2 header (HAProxy is the trusted
    # peer): it logs this client's own address and port, not HAProxy's
    with hftp.Client("127.0.0.1", int(address.split(":")[1]),
                     timeout=10 * SCALE, tls=hftp.tls_context(str(certs.ca))) as c:
        me = "127.0.0.1:%d" % c.sock.getsockname()[1]
        assert c.metadata("big.bin") == len(body)
    srv.stop()                          # flushes the access log
    lines = srv.access_log.read_text().splitlines()
    assert [ln for ln in lines if ln.split()[1] == me and "get_metadata" in ln], \
        (me, lines[-5:])


def still_open(socks):
    """How many of socks (non-blocking) the server has not closed."""
    n = 0
    for s in socks:
        try:
            n += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def test_shipped_haproxy_tls_cfg_caps_one_address(haproxy_tls, certs, tmp_path):
    # one address holding connections that never handshake fills only its
    # own share of HAProxy; another address is still served
    srv, address = haproxy_tls
    host, port = address.split(":")
    held = []
    try:
        for _ in range(HAPROXY_CAP + 3):
            s = socket.socket()
            s.settimeout(5)
            s.bind(("127.0.0.2", 0))
            try:
                s.connect((host, int(port)))
            except ConnectionError:
                s.close()   # closed over the cap before connect() returned
                continue
            s.setblocking(False)
            held.append(s)
        assert wait_for(lambda: still_open(held) == HAPROXY_CAP, 5 * SCALE), \
            still_open(held)
        r = hftp_run("--cafile", certs.ca, address, "ls")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"big.bin\n"
        assert still_open(held) == HAPROXY_CAP
    finally:
        for s in held:
            s.close()
