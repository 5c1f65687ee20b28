"""Slice framings: base64 (default), raw (per request) and legacy fragments
(slice_encoding = fragments), with binary data and large slices."""

import base64
import hashlib
import os
import random
import re
import socket
import threading

import pytest

import hftp

from conftest import (OK, SCALE, ST, WORKED_EXAMPLE, assert_usable, converse,
                      tcp_connections, wait_for)

BINARY = (bytes(range(256)) * 64 + b"\x00" * 300 + b"\r\n\r\n0 \r\n\n\r" +
          b"Content-Length: 5\r\n\r\n" + bytes(range(255, -1, -1)) * 8 +
          random.Random(1).randbytes(100000))

SLICES = [(0, len(BINARY)), (0, 1), (1, 2), (2, 3), (3, 4), (255, 3),
          (16384, 300), (16384 + 290, 30), (len(BINARY) - 1, 1),
          (len(BINARY), 0), (0, 0), (7, 65536), (12345, 54321)]


def parse_fragments(body):
    """Strictly parses a fragment-framed body that must be complete and
    followed by nothing; returns (data, fragment lengths)."""
    data, lens, pos = bytearray(), [], 0
    while True:
        m = re.compile(rb"(0|[1-9][0-9]*) ").match(body, pos)
        assert m, "bad fragment length at %d: %r" % (pos, body[pos:pos + 40])
        n = int(m.group(1))
        pos = m.end()
        if n == 0:
            assert body[pos:] == b"\r\n", "bad terminator %r" % body[pos:pos + 40]
            return bytes(data), lens
        lens.append(n)
        data += body[pos:pos + n]
        assert len(body) >= pos + n + 2, "short fragment"
        pos += n
        assert body[pos:pos + 2] == b"\r\n", "fragment not ended by CR LF"
        pos += 2


def read_fragments(c):
    """Reads one fragment-framed body from a client's stream (after 0 OK)."""
    raw = bytearray()
    # Read field by field so that nothing after the terminator is consumed.
    data = bytearray()
    while True:
        num = bytearray()
        while True:
            ch = c.read_exact(1)
            raw += ch
            if ch == b" ":
                break
            num += ch
            assert len(num) <= 20 and ch.isdigit(), "bad fragment length %r" % raw[-40:]
        assert num == b"0" or not num.startswith(b"0"), "leading zero: %r" % num
        n = int(num)
        if n == 0:
            assert c.read_exact(2) == b"\r\n"
            return bytes(data)
        data += c.read_exact(n)
        assert c.read_exact(2) == b"\r\n", "fragment not ended by CR LF"


@pytest.fixture
def bin_server(hftpd):
    return hftpd(files={"bin": BINARY, "archivo.txt": WORKED_EXAMPLE,
                        "hello": b"hello world", "empty": b""})


@pytest.fixture
def frag_server(hftpd):
    return hftpd(files={"bin": BINARY, "archivo.txt": WORKED_EXAMPLE,
                        "hello": b"hello world", "empty": b""},
                 config={"slice_encoding": "fragments"})


# -- base64 -----------------------------------------------------------------------

def test_base64_exact_bytes_binary(bin_server):
    c = bin_server.client()
    for off, size in SLICES:
        c.send_raw(b"get_slice bin %d %d\r\n" % (off, size))
        want = OK + base64.b64encode(BINARY[off:off + size]) + b"\r\n"
        assert c.read_at_most(len(want)) == want, (off, size)
    assert_usable(c)


def test_base64_configured_explicitly(hftpd):
    srv = hftpd(config={"slice_encoding": "base64"})
    converse(srv, b"get_slice archivo.txt 5 20\r\n",
             b"0 OK\r\nY2Fsb3IgcXVlIGhhY2UgaG95LCA=\r\n")
    converse(srv, b"get_slice archivo.txt 41 0\r\n", b"0 OK\r\n\r\n")


def test_base64_client_decodes(bin_server):
    with bin_server.client() as c:
        for off, size in SLICES:
            assert c.slice("bin", off, size) == BINARY[off:off + size]


# -- raw ----------------------------------------------------------------------------

def test_raw_worked_example_and_nothing_after(bin_server):
    c = converse(bin_server, b"get_slice archivo.txt 5 20 raw\r\n",
                 b"0 OK\r\nContent-Length: 20\r\n\r\ncalor que hace hoy, ")
    # Nothing after the body: the next response follows immediately.
    c.send_raw(b"get_metadata archivo.txt\r\n")
    assert c.read_at_most(10) == b"0 OK\r\n41\r\n"


def test_raw_exact_bytes_binary(bin_server):
    c = bin_server.client()
    for off, size in SLICES:
        c.send_raw(b"get_slice bin %d %d raw\r\n" % (off, size))
        want = (b"0 OK\r\nContent-Length: %d\r\n\r\n" % size +
                BINARY[off:off + size])
        assert c.read_at_most(len(want)) == want, (off, size)
    assert_usable(c)


def test_raw_size_zero(bin_server):
    c = converse(bin_server, b"get_slice bin 5 0 raw\r\nhelp\r\n",
                 b"0 OK\r\nContent-Length: 0\r\n\r\n0 OK\r\nget_file_listing\r\n")


def test_raw_client(bin_server):
    with bin_server.client() as c:
        for off, size in SLICES:
            assert c.slice("bin", off, size, raw=True) == BINARY[off:off + size]


def test_raw_pipelined_with_base64(bin_server):
    c = bin_server.client()
    reqs, want = [], b""
    for i, (off, size) in enumerate(SLICES * 3):
        if i % 2:
            reqs.append(b"get_slice bin %d %d raw\r\n" % (off, size))
            want += (b"0 OK\r\nContent-Length: %d\r\n\r\n" % size +
                     BINARY[off:off + size])
        else:
            reqs.append(b"get_slice bin %d %d\r\n" % (off, size))
            want += OK + base64.b64encode(BINARY[off:off + size]) + b"\r\n"
    t = threading.Thread(target=c.send_raw, args=(b"".join(reqs),))
    t.start()
    got = c.read_at_most(len(want))
    t.join()
    assert got == want


# -- fragments ----------------------------------------------------------------

def test_fragments_spec_example(frag_server):
    converse(frag_server, b"get_slice hello 0 11\r\n",
             b"0 OK\r\n11 hello world\r\n0 \r\n")


def test_fragments_size_zero(frag_server):
    c = converse(frag_server, b"get_slice hello 11 0\r\n", b"0 OK\r\n0 \r\n")
    c.send_raw(b"get_slice empty 0 0\r\nget_slice hello 0 0\r\n")
    assert c.read_at_most(20) == b"0 OK\r\n0 \r\n" * 2
    assert_usable(c)


def test_fragments_worked_example(frag_server):
    c = frag_server.client()
    c.send_raw(b"get_slice archivo.txt 5 20\r\n")
    assert c.read_exact(6) == OK
    assert read_fragments(c) == WORKED_EXAMPLE[5:25]
    assert_usable(c)


def test_fragments_binary(frag_server):
    c = frag_server.client()
    for off, size in SLICES:
        c.send_raw(b"get_slice bin %d %d\r\n" % (off, size))
        assert c.read_exact(6) == OK
        assert read_fragments(c) == BINARY[off:off + size], (off, size)
    assert_usable(c)


def test_fragments_strict_parse_whole_file(frag_server):
    c = frag_server.client()
    c.send_raw(b"get_slice bin 0 %d\r\nhelp\r\n" % len(BINARY))
    c.sock.shutdown(socket.SHUT_WR)
    everything = c.read_all()
    assert everything.startswith(OK)
    help_tail = b"0 OK\r\nget_file_listing\r\nget_metadata\r\nget_slice\r\nhelp\r\nquit\r\n\r\n"
    assert everything.endswith(help_tail)
    data, lens = parse_fragments(everything[len(OK):-len(help_tail)])
    assert data == BINARY
    assert all(n > 0 for n in lens)


def test_fragments_raw_still_raw(frag_server):
    converse(frag_server, b"get_slice archivo.txt 5 20 raw\r\n",
             b"0 OK\r\nContent-Length: 20\r\n\r\ncalor que hace hoy, ")
    converse(frag_server, b"get_slice archivo.txt 5 0 raw\r\n",
             b"0 OK\r\nContent-Length: 0\r\n\r\n")


def test_fragments_client_autodetects(frag_server):
    with frag_server.client() as c:
        for off, size in SLICES:
            assert c.slice("bin", off, size) == BINARY[off:off + size]
            assert c.slice("bin", off, size, raw=True) == BINARY[off:off + size]


def test_fragments_errors_unchanged(frag_server):
    c = converse(frag_server, b"get_slice hello 0 12\r\n", ST[203])
    c.send_raw(b"get_slice nope 0 0\r\nget_slice hello 0 1 x\r\n")
    assert c.read_at_most(len(ST[202]) + len(ST[201])) == ST[202] + ST[201]


# -- large slices -------------------------------------------------------------

@pytest.fixture
def big_server(hftpd, tmp_path):
    data = os.urandom((32 << 20) + (1 << 20) + 17)
    srv = hftpd(files={"big": data})
    srv.data = data
    return srv


@pytest.mark.slow
@pytest.mark.parametrize("raw", [False, True], ids=["base64", "raw"])
def test_32MiB_slice(big_server, raw):
    data = big_server.data
    off, size = (1 << 20) + 3, 32 << 20
    want = hashlib.sha256(data[off:off + size]).hexdigest()
    with big_server.client(timeout=60) as c:
        h, n, biggest = hashlib.sha256(), 0, 0
        for chunk in c.iter_slice("big", off, size, raw=raw):
            h.update(chunk)
            n += len(chunk)
            biggest = max(biggest, len(chunk))
        assert n == size
        assert h.hexdigest() == want
        assert biggest <= 256 * 1024       # the client streamed it
        assert c.metadata("big") == len(data)


@pytest.mark.slow
def test_32MiB_slice_byte_for_byte(big_server):
    data = big_server.data
    with big_server.client(timeout=60) as c:
        assert c.slice("big", 5, 32 << 20) == data[5:5 + (32 << 20)]
        assert c.slice("big", 0, 32 << 20, raw=True) == data[:32 << 20]


@pytest.mark.slow
def test_8MiB_fragments(hftpd):
    data = os.urandom(8 << 20)
    srv = hftpd(files={"big": data}, config={"slice_encoding": "fragments"})
    with srv.client(timeout=60) as c:
        assert c.slice("big", 1, len(data) - 1) == data[1:]


def test_download_and_chunking(hftpd, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    srv = hftpd(files={"f": data, "empty": b""})
    with srv.client() as c:
        for raw in (False, True):
            out = tmp_path / ("out%d" % raw)
            assert c.download("f", out, chunk=1000 * 1000, raw=raw) == len(data)
            assert out.read_bytes() == data
        c.download("empty", tmp_path / "e")
        assert (tmp_path / "e").read_bytes() == b""


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "base64"])
def test_file_shrinks_during_slice_short_response_not_wrong_bytes(hftpd, raw):
    # docs/PROTOCOL.md: the client sees a short response rather than wrong bytes.
    # The race is timing dependent, so it is tried several times.
    data = os.urandom(64 << 20)
    srv = hftpd(files={}, workers=1)
    path = srv.directory / "big"
    for attempt in range(5):
        path.write_bytes(data)
        c = srv.client(timeout=10 * SCALE)
        it = c.iter_slice("big", 0, len(data), raw=raw)
        got = bytearray(next(it))
        os.truncate(path, 1 << 20)
        with pytest.raises(hftp.ConnectionClosedError):
            for chunk in it:
                got += chunk
        assert len(got) < len(data)
        if got != data[:len(got)]:
            bad = next(i for i in range(len(got)) if got[i] != data[i])
            pytest.fail("attempt %d: %d bytes received, wrong from offset %d "
                        "(new file size %d): got %r, file had %r"
                        % (attempt, len(got), bad, 1 << 20,
                           bytes(got[bad:bad + 8]), data[bad:bad + 8]))
        # The server is fine and serves the new size.
        with srv.client() as c2:
            assert c2.metadata("big") == 1 << 20


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "base64"])
def test_slices_follow_the_file_as_it_changes(hftpd, raw):
    # Workers keep files mapped across requests (framing.c); every answer
    # must still be the file as it is now: grown, rewritten in place,
    # replaced by another inode, or shrunk.
    rng = random.Random(5)
    srv = hftpd(files={}, workers=1)
    path = srv.directory / "f"
    data = rng.randbytes(100 * 1024)
    path.write_bytes(data)
    with srv.client(timeout=10 * SCALE) as c:
        def check(off, size):
            assert c.slice("f", off, size, raw=raw) == data[off:off + size], \
                (off, size)
        check(0, len(data))
        check(4096, 5000)
        with open(path, "ab") as f:             # grows, same inode
            more = rng.randbytes(200 * 1024)
            f.write(more)
        data += more
        check(150 * 1024, 100 * 1024)
        check(0, len(data))
        with open(path, "r+b") as f:            # rewritten in place
            f.seek(4096)
            patch = rng.randbytes(5000)
            f.write(patch)
        data = data[:4096] + patch + data[4096 + 5000:]
        check(4000, 6000)
        data = rng.randbytes(80 * 1024)         # replaced: a new inode
        (srv.directory / "f.new").write_bytes(data)
        os.rename(srv.directory / "f.new", path)
        check(0, len(data))
        os.truncate(path, 50 * 1024)            # shrinks, same inode
        data = data[:50 * 1024]
        check(1000, 49 * 1024)
        c.send_raw(b"get_slice f 1000 51000\r\n")
        assert c.read_exact(len(ST[203])) == ST[203]
        assert c.metadata("f") == 50 * 1024


def _open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_file_replaced_while_a_slice_reads_it(hftpd):
    """A slice reads through the descriptor the worker's metadata cache
    keeps (lent, not copied).  The file replaced by rename while a slow
    response still reads the old one: the cache forgets the name, yet that
    response gets the old bytes whole (the descriptor stays open for it);
    a new request gets the new bytes; once both are done the worker holds
    no more descriptors than before."""
    old, new = os.urandom(8 << 20), os.urandom(1 << 20)
    # A small send buffer keeps most of the old body in the worker's hands.
    srv = hftpd(files={"f": old}, workers=1, config={"send_buffer": "4K"})
    (w,) = srv.wait_workers(1)
    with srv.client() as c:
        assert c.slice("f", 0, 10) == old[:10]      # opened: a copy kept
        assert c.slice("f", 5, 10) == old[5:15]     # the kept one lent
    assert wait_for(lambda: len(tcp_connections(srv.port)) == 0, 10 * SCALE)
    before = _open_fds(w)
    slow = socket.socket(socket.AF_INET)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    slow.settimeout(10 * SCALE)
    slow.connect((srv.host, srv.port))
    slow.sendall(b"get_slice f 0 %d\r\n" % len(old))
    want = b"0 OK\r\n" + base64.b64encode(old) + b"\r\n"
    got = bytearray(slow.recv(4096))
    assert got
    (srv.directory / "f.new").write_bytes(new)
    os.rename(srv.directory / "f.new", srv.directory / "f")
    with srv.client() as c:
        assert c.slice("f", 1000, 3000) == new[1000:4000]
    while len(got) < len(want):
        b = slow.recv(1 << 20)
        assert b, "the response to the old file was cut"
        got += b
    assert bytes(got) == want
    slow.close()
    assert wait_for(lambda: _open_fds(w) <= before, 10 * SCALE), \
        "%d descriptors, %d before" % (_open_fds(w), before)
