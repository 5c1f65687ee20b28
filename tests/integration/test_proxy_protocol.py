"""PROXY protocol listeners on loopback, without a balancer: the header's
client address is what the access log shows (v1 TCP4, v2 TCP6; v2 LOCAL and
v1 UNKNOWN keep the connection's own), the header may arrive in pieces, and
a connection whose header is wrong, too long or too slow is closed without
an answer and logged.  A plain listener never reads a PROXY header.  The
same through a real HAProxy: test_haproxy_netns.py."""

import re
import socket
import struct
import time

from conftest import HELP_RESPONSE, SCALE, free_port, wait_for

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(cmd, fam, payload=b""):
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(payload)) + payload


def v2_tcp6(src, dst, sport, dport):
    return v2_header(1, 0x21, socket.inet_pton(socket.AF_INET6, src) +
                     socket.inet_pton(socket.AF_INET6, dst) +
                     struct.pack("!HH", sport, dport))


def start(hftpd, tmp_path, extra=()):
    plain, proxied = free_port(), free_port()
    log = tmp_path / "access.log"
    srv = hftpd(port=plain, workers=1, config=[
        "listen = 127.0.0.1:%d" % plain,
        "listen = 127.0.0.1:%d proxy_protocol" % proxied,
        "access_log = %s" % log] + list(extra))
    srv.proxied = proxied
    srv.access_log = log
    # The fixture waited for the plain listener; the second one is bound
    # right after it (a gap valgrind makes wide enough to hit).
    assert wait_for(lambda: _accepts(proxied), 10 * SCALE)
    return srv


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def access_peers(srv, n):
    """The CLIENT field of the first n access-log lines (waits for them)."""
    def lines():
        if not srv.access_log.exists():
            return []
        return srv.access_log.read_text().splitlines()
    assert wait_for(lambda: len(lines()) >= n, 5 * SCALE), lines()
    return [ln.split()[1] for ln in lines()]


def ask_help(srv, port, prefix, pieces=1, delay=0.0):
    """Connects to port, sends prefix + help in `pieces` parts; the answer."""
    data = prefix + b"help\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE) as s:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            s.sendall(data[i:i + step])
            if delay:
                time.sleep(delay)
        got = b""
        while len(got) < len(HELP_RESPONSE):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got, s.getsockname()[1]


def closed_unanswered(port, data, timeout):
    """Sends data; True when the server closes with no byte sent back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        try:
            return s.recv(65536) == b""
        except ConnectionResetError:
            return True


def test_client_address_from_header(hftpd, tmp_path):
    srv = start(hftpd, tmp_path)
    v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 51234 19500\r\n"
    assert ask_help(srv, srv.proxied, v1)[0] == HELP_RESPONSE
    assert ask_help(srv, srv.proxied, v2_tcp6("2001:db8::1", "2001:db8::2",
                                              40000, 19500))[0] == HELP_RESPONSE
    # LOCAL (a balancer's own health check) and UNKNOWN: the real peer
    _, local_port = ask_help(srv, srv.proxied, v2_header(0, 0))
    _, unknown_port = ask_help(srv, srv.proxied, b"PROXY UNKNOWN\r\n")
    peers = access_peers(srv, 4)
    assert peers == ["192.0.2.1:51234", "[2001:db8::1]:40000",
                     "127.0.0.1:%d" % local_port,
                     "127.0.0.1:%d" % unknown_port]


def test_header_in_pieces(hftpd, tmp_path):
    srv = start(hftpd, tmp_path)
    v1 = b"PROXY TCP4 192.0.2.7 198.51.100.2 1 19500\r\n"
    got, _ = ask_help(srv, srv.proxied, v1, pieces=len(v1) + 6, delay=0.005)
    assert got == HELP_RESPONSE
    v2 = v2_tcp6("2001:db8::7", "2001:db8::2", 2, 19500)
    got, _ = ask_help(srv, srv.proxied, v2, pieces=7, delay=0.01)
    assert got == HELP_RESPONSE
    assert access_peers(srv, 2) == ["192.0.2.7:1", "[2001:db8::7]:2"]


def test_bad_headers_closed_and_logged(hftpd, tmp_path):
    # Counted at info (an attacker can repeat them); each reason at debug.
    srv = start(hftpd, tmp_path, ["log_level = debug"])
    # plain HFTP on a PROXY listener: refused at its first byte
    assert closed_unanswered(srv.proxied, b"help\r\n", 5 * SCALE)
    # v1 longer than 107 bytes, never reaching the request parser
    assert closed_unanswered(srv.proxied, b"PROXY UNKNOWN " + b"x" * 200, 5 * SCALE)
    # v2 declaring more than the bound
    assert closed_unanswered(srv.proxied, V2_SIG + b"\x21\x11\xff\xff", 5 * SCALE)
    # a v2 address block shorter than its family
    assert closed_unanswered(srv.proxied, v2_header(1, 0x11, b"\0" * 8) + b"help\r\n",
                             5 * SCALE)
    err = srv.stderr_text()
    assert err.count("PROXY header") >= 4, err
    assert "wrong signature" in err and "longer than 107" in err
    assert "declared length too large" in err and "too short" in err
    assert wait_for(lambda: "closed on a bad PROXY header" in srv.stderr_text(), 3 * SCALE)
    # nothing of it was answered or logged as a request
    assert not srv.access_log.exists() or srv.access_log.read_text() == ""


def test_slow_header_times_out(hftpd, tmp_path):
    srv = start(hftpd, tmp_path)
    t0 = time.monotonic()
    assert closed_unanswered(srv.proxied, b"PROXY TCP4 192.0.2.1 ", 10 * SCALE)
    took = time.monotonic() - t0
    # CLIENT_PROXY_TIMEOUT_MS (3 s), checked by the once-a-second sweep
    assert 2.5 <= took <= 5.5 * SCALE, took
    assert wait_for(lambda: "closed without a PROXY header in time" in srv.stderr_text(), 2 * SCALE)


def test_plain_listener_reads_no_header(hftpd, tmp_path):
    srv = start(hftpd, tmp_path)
    got, port = ask_help(srv, srv.port, b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n")
    # the header line is an unknown HFTP command; the address is the real one
    assert re.match(rb"^2\d\d ", got), got
    assert all(p == "127.0.0.1:%d" % port for p in access_peers(srv, 1))
