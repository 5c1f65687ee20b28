"""Hostile and broken clients: stalled requests, clients that never read,
unread input at close.  Each test failed before its fix."""
import os
import socket
import time

from conftest import SCALE, wait_for


def _connect(srv, rcvbuf=None):
    s = socket.socket(socket.AF_INET)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10 * SCALE)
    s.connect((srv.host, srv.port))
    return s


def _closed_by_server(s, timeout):
    """True when the server closes s within timeout (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_slowloris_request_line_closed_by_request_timeout(hftpd):
    # Before: a line that trickled in one byte a second was never closed.
    srv = hftpd(workers=1, config={"request_timeout": "2s",
                                   "request_min_rate": "0",
                                   "client_timeout": "300s"})
    s = _connect(srv)
    t0 = time.monotonic()
    closed = False
    for b in b"get_metadata archivo.txt":
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = True
            break
        s.settimeout(1.0)
        try:
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
            break
        if time.monotonic() - t0 > 8 * SCALE:
            break
    elapsed = time.monotonic() - t0
    assert closed, "a request line trickling for %.1f s was not closed" % elapsed
    assert elapsed < 6 * SCALE
    assert wait_for(lambda: "request_timeout expired" in srv.stderr_text(), 3 * SCALE)


def test_request_min_rate_extends_the_deadline(hftpd):
    # An honest slow client: 64 KiB a second for 3 s meets a 1 s deadline
    # extended by a second per 32 KiB received.
    srv = hftpd(workers=1, config={"request_timeout": "1s",
                                   "request_min_rate": "32K"})
    s = _connect(srv)
    s.sendall(b"get_metadata ")
    for _ in range(6):
        s.sendall(b"a" * (32 << 10))
        time.sleep(0.5)
    s.sendall(b"\r\n")
    assert s.recv(100).startswith(b"202 FILE NOT FOUND\r\n")


def test_client_that_never_reads_closed_by_send_timeout(hftpd):
    # Before: a client owed a large body that read nothing held its slot
    # (and the body's memory) for ever.
    srv = hftpd(files={"big.bin": os.urandom(1 << 20) * 16}, workers=1,
                config={"send_timeout": "2s"})
    s = _connect(srv, rcvbuf=4096)
    s.sendall(b"get_slice big.bin 0 16777216 raw\r\n")
    time.sleep(4 * SCALE)
    assert _closed_by_server(s, 10 * SCALE)
    assert wait_for(lambda: "send_timeout expired" in srv.stderr_text(), 3 * SCALE)


def test_slow_reader_that_keeps_reading_is_served(hftpd):
    # send_timeout counts time without progress, not the whole transfer.
    body = os.urandom(1 << 20) * 4
    srv = hftpd(files={"big.bin": body}, workers=1,
                config={"send_timeout": "1s"})
    s = _connect(srv, rcvbuf=16384)
    s.sendall(b"get_slice big.bin 0 %d raw\r\nquit\r\n" % len(body))
    got = bytearray()
    t0 = time.monotonic()
    while True:
        b = s.recv(256 << 10)
        if not b:
            break
        got += b
        if time.monotonic() - t0 < 3:
            time.sleep(0.05)        # slow, but never 1 s without reading
    head = b"0 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert bytes(got) == head + body + b"0 OK\r\n"


def test_response_survives_unread_input_at_close(hftpd):
    # Before: after quit, input the server never read made close() reset
    # the connection, and the kernel dropped the answer still queued: the
    # client got part of a large body and no final status.
    body = os.urandom(1 << 20) * 6
    srv = hftpd(files={"big.bin": body}, workers=1)
    head = b"0 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    for _ in range(3):
        s = _connect(srv, rcvbuf=65536)
        s.sendall(b"get_slice big.bin 0 %d raw\r\nquit\r\n" % len(body))
        # More than the server reads at once: some stays in its socket.
        s.settimeout(1.0)
        try:
            s.sendall(b"help\r\n" * 50000)
        except socket.timeout:
            pass
        s.settimeout(10 * SCALE)
        time.sleep(0.5)
        got = bytearray()
        while True:
            try:
                b = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
        s.close()
        assert len(got) == len(head) + len(body) + 6, "got %d bytes" % len(got)
        assert bytes(got[-6:]) == b"0 OK\r\n"
