"""A file truncated while a slice of it is being sent: never a wrong byte.

A mapped file reads zeros (not SIGBUS) past its new end inside the last
page, so a slice whose end lies in the same page as the new end of file
used to arrive complete and correctly framed, its tail zeros the file
never held.  The response must end short (the connection closes) and every
byte that did arrive must be the file's.
"""
import base64
import os
import socket
import time

import pytest

from conftest import SCALE

SIZE = 32 << 20
TAIL = 100                      # the new end: 100 bytes before the slice's end
PATTERN = bytes(range(1, 256))  # no zero byte anywhere in the file


def _content():
    return (PATTERN * (SIZE // len(PATTERN) + 1))[:SIZE]


def _slow_client(srv):
    s = socket.socket(socket.AF_INET)
    # A small receive window keeps most of the body in the server's hands.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.settimeout(10 * SCALE)
    s.connect((srv.host, srv.port))
    return s


def _read_rest(s, got, complete):
    """Reads until the server closes, or until the whole response came
    (the old server sent it all and kept the connection open)."""
    got = bytearray(got)
    while not complete(got):
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    return bytes(got)


def _truncate_mid_slice(hftpd, request, complete):
    content = _content()
    srv = hftpd(files={"big.bin": content}, workers=1)
    path = srv.directory / "big.bin"
    # Warm the worker's metadata and open-file cache first.
    warm = _slow_client(srv)
    warm.sendall(b"get_slice big.bin 0 10 raw\r\nquit\r\n")
    _read_rest(warm, b"", lambda got: False)
    warm.close()

    s = _slow_client(srv)
    s.sendall(request)
    first = s.recv(64 << 10)
    assert first
    os.truncate(path, SIZE - TAIL)
    got = _read_rest(s, first, complete)
    s.close()
    return content, got


@pytest.mark.slow
def test_raw_slice_ends_short_not_with_zeros(hftpd):
    head = b"0 OK\r\nContent-Length: %d\r\n\r\n" % SIZE
    content, got = _truncate_mid_slice(
        hftpd, b"get_slice big.bin 0 %d raw\r\n" % SIZE,
        lambda got: len(got) >= len(head) + SIZE)
    assert got.startswith(head)
    body = got[len(head):]
    assert len(body) <= SIZE - TAIL, "a full body after the file shrank"
    assert body == content[:len(body)], "bytes the file never held"


@pytest.mark.slow
def test_base64_slice_ends_short_not_with_zeros(hftpd):
    content, got = _truncate_mid_slice(
        hftpd, b"get_slice big.bin 0 %d\r\n" % SIZE,
        lambda got: len(got) > 6 and got[-2:] == b"\r\n")
    assert got.startswith(b"0 OK\r\n")
    line = got[len(b"0 OK\r\n"):]
    assert not line.endswith(b"\r\n"), "a complete line after the file shrank"
    line = line[:len(line) - len(line) % 4]
    body = base64.b64decode(line)
    assert len(body) <= SIZE - TAIL
    assert body == content[:len(body)], "bytes the file never held"


def test_answers_queued_before_a_broken_body_still_arrive(hftpd):
    """Pipelined: a slice, a get_metadata, then a slice of a file that
    shrinks while its body waits for room.  The answers queued before the
    broken body are the client's: they arrive whole, then the broken body
    ends short and the connection closes (it used to be closed at once,
    dropping everything still queued)."""
    first = bytes(range(1, 256)) * 400             # 102,000 bytes
    content = _content()
    srv = hftpd(files={"first.bin": first, "big.bin": content,
                       "small": b"12345"},
                workers=1, config={"send_buffer": "4K"})
    s = _slow_client(srv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"get_slice first.bin 0 %d\r\nget_metadata small\r\n"
              b"get_slice big.bin 0 %d\r\n" % (len(first), SIZE))
    # The kernel holds a few KiB; the rest waits in the worker's queue:
    # the first body's tail, the metadata answer, the big body's start.
    time.sleep(1.0 * SCALE)
    os.truncate(srv.directory / "big.bin", 0)
    got = _read_rest(s, b"", lambda got: False)
    s.close()
    expected = (b"0 OK\r\n" + base64.b64encode(first) + b"\r\n"
                b"0 OK\r\n5\r\n0 OK\r\n")
    assert got[:len(expected)] == expected, \
        "%d bytes arrived; the queued answers were cut" % len(got)
    rest = got[len(expected):]
    assert not rest.endswith(b"\r\n"), "a complete body after the file shrank"
    rest = rest[:len(rest) - len(rest) % 4]
    assert base64.b64decode(rest) == content[:len(rest) // 4 * 3]
