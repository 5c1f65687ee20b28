"""The protocol (docs/PROTOCOL.md), request by request: status codes, argument rules, check order,
end-of-line errors, quit and half-close."""

import base64
import os
import socket
import stat
import time

import pytest

from conftest import (HELP_RESPONSE, OK, SCALE, ST, WORKED_EXAMPLE,
                      assert_usable, converse)
import hftp


def b64(data):
    return base64.b64encode(data)


# -- 0 OK ------------------------------------------------------------------

def test_worked_example(server):
    converse(server, b"get_slice archivo.txt 5 20\r\n",
             b"0 OK\r\nY2Fsb3IgcXVlIGhhY2UgaG95LCA=\r\n")


def test_metadata(server):
    c = converse(server, b"get_metadata archivo.txt\r\n", b"0 OK\r\n41\r\n")
    c.send_raw(b"get_metadata empty\r\nget_metadata ten.txt\r\n")
    want = b"0 OK\r\n0\r\n0 OK\r\n10\r\n"
    assert c.read_at_most(len(want)) == want


def test_help(server):
    c = converse(server, b"help\r\n", HELP_RESPONSE)
    assert_usable(c)
    with server.client() as c2:
        assert c2.help() == ["get_file_listing", "get_metadata", "get_slice",
                             "help", "quit"]


def test_listing_default(server):
    converse(server, b"get_file_listing\r\n",
             b"0 OK\r\narchivo.txt\r\nempty\r\nten.txt\r\n\r\n")


def test_whole_file_and_boundaries(server):
    c = converse(server, b"get_slice ten.txt 0 10\r\n",
                 b"0 OK\r\n" + b64(b"0123456789") + b"\r\n")
    for off, size in [(0, 1), (9, 1), (3, 4), (1, 9), (0, 9)]:
        c.send_raw(b"get_slice ten.txt %d %d\r\n" % (off, size))
        want = b"0 OK\r\n" + b64(b"0123456789"[off:off + size]) + b"\r\n"
        assert c.read_at_most(len(want)) == want


def test_size_zero_base64_anywhere(server):
    c = converse(server, b"get_slice ten.txt 10 0\r\n", b"0 OK\r\n\r\n")
    for req in (b"get_slice ten.txt 0 0\r\n", b"get_slice ten.txt 5 0\r\n",
                b"get_slice empty 0 0\r\n", b"get_slice empty 0 0 raw\r\n"):
        c.send_raw(req)
        want = (b"0 OK\r\nContent-Length: 0\r\n\r\n" if req.endswith(b"raw\r\n")
                else b"0 OK\r\n\r\n")
        assert c.read_at_most(len(want)) == want, req
    assert_usable(c)


def test_leading_zeros_are_fine(server):
    converse(server, b"get_slice ten.txt 0002 03\r\n",
             b"0 OK\r\n" + b64(b"234") + b"\r\n")
    long_zeros = b"0" * 1000
    converse(server, b"get_slice ten.txt " + long_zeros + b"2 " + long_zeros +
             b"3\r\n", b"0 OK\r\n" + b64(b"234") + b"\r\n")


# -- quit --------------------------------------------------------------------

def test_quit_closes(server):
    converse(server, b"quit\r\n", OK, closed=True)


def test_quit_client_method(server):
    c = server.client()
    c.quit()
    assert c.closed


def test_bytes_after_quit_ignored(server):
    converse(server, b"quit\r\nhelp\r\nget_metadata ten.txt\r\n\n\r\n\x00junk",
             OK, closed=True)


def test_quit_after_other_requests(server):
    converse(server, b"get_metadata ten.txt\r\nquit\r\nhelp\r\n",
             b"0 OK\r\n10\r\n" + OK, closed=True)


def test_leading_space_quit_is_unknown_command(server):
    c = converse(server, b" quit\r\n", ST[200])
    assert_usable(c)
    c = converse(server, b"  help\r\n", ST[200])
    assert_usable(c)


def test_quit_with_argument_is_201_and_stays_open(server):
    c = converse(server, b"quit now\r\n", ST[201])
    assert_usable(c)


# -- 101 BAD REQUEST ------------------------------------------------------------

@pytest.mark.parametrize("line", [b"\r\n", b" \r\n", b"     \r\n"],
                         ids=["empty", "one-space", "spaces"])
def test_101_empty_or_spaces(server, line):
    converse(server, line, ST[101], closed=True)


def test_101_after_pipelined_requests_answers_earlier_first(server):
    converse(server, b"get_metadata ten.txt\r\nhelp\r\n\r\nhelp\r\n",
             b"0 OK\r\n10\r\n" + HELP_RESPONSE + ST[101], closed=True)


def test_101_client_raises_fatal_and_closes(server):
    c = server.client()
    with pytest.raises(hftp.BadRequest) as ei:
        c.request("")
    assert ei.value.code == 101 and ei.value.fatal
    assert c.closed


def test_101_line_over_limit(hftpd):
    srv = hftpd(config={"request_line_max": "1K"})
    # Exactly 1024 bytes before CR LF is within the limit.
    line = b"get_metadata " + b"x" * (1024 - len(b"get_metadata "))
    assert len(line) == 1024
    c = converse(srv, line + b"\r\n", ST[202])
    assert_usable(c)
    # 1025 bytes: 101 as soon as the limit is passed, without a CR LF.
    converse(srv, b"get_metadata " + b"x" * (1025 - 13), ST[101],
             closed=True, timeout=3 * SCALE)
    # Also when the excess is in the command element.
    converse(srv, b"h" * 5000, ST[101], closed=True, timeout=3 * SCALE)
    # Earlier complete requests are answered first.
    converse(srv, b"get_metadata ten.txt\r\n" + b"y" * 2000,
             b"0 OK\r\n10\r\n" + ST[101], closed=True, timeout=3 * SCALE)


@pytest.mark.slow
def test_101_default_limit_16MiB(server):
    c = server.client(timeout=10 * SCALE)
    # 16 MiB is accepted up to the limit: a 16 MiB - 13 byte name -> 202.
    line = b"get_metadata " + b"x" * (16 * 1024 * 1024 - 13)
    c.send_raw(line + b"\r\n")
    assert c.read_at_most(len(ST[202])) == ST[202]
    c.send_raw(line + b"xx")
    assert c.read_at_most(len(ST[101])) == ST[101]
    c.sock.settimeout(5)
    assert c.at_eof()


# -- 100 BAD EOL ----------------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"\n", b"help\n", b"get_metadata ten.txt\n", b"get_slice ten.txt 0 1\n",
    b"he\nlp\r\n", b"\n\r\n",
], ids=["bare-lf", "help-lf", "metadata-lf", "slice-lf", "lf-inside",
        "lf-then-crlf"])
def test_100_stray_lf_answered_at_once(server, request_bytes):
    # Nothing is sent after the stray LF except what the parametrization
    # holds; the answer must come without waiting for a CR LF.
    converse(server, request_bytes, ST[100], closed=True, timeout=3 * SCALE)


def test_100_after_earlier_requests(server):
    converse(server, b"help\r\nget_metadata ten.txt\r\nfoo\n",
             HELP_RESPONSE + b"0 OK\r\n10\r\n" + ST[100], closed=True)


def test_100_lf_in_long_line_no_wait(server):
    converse(server, b"get_metadata " + b"x" * 100000 + b"\n", ST[100],
             closed=True, timeout=3 * SCALE)


# -- CR and TAB are ordinary characters --------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"he\rlp\r\n", b"help\r\r\n", b"help\rx\r\n", b"\r\r\n",
    b"get_metadata\tten.txt\r\n", b"help\t\r\n", b"\thelp\r\n",
], ids=["cr-inside-command", "cr-after-command", "cr-x", "lone-cr",
        "tab-separator", "tab-after", "tab-before"])
def test_cr_tab_in_command_200(server, request_bytes):
    c = converse(server, request_bytes, ST[200])
    assert_usable(c)


@pytest.mark.parametrize("request_bytes", [
    b"get_metadata ten.txt\r\r\n", b"get_metadata te\rn.txt\r\n",
    b"get_slice ten.txt 0\r 1\r\n", b"get_slice ten.txt 0 1\r\r\n",
    b"get_slice ten.txt 0 1 raw\r\r\n", b"get_metadata ten.txt\t\r\n",
    b"get_slice ten.txt\t0 1\r\n",
], ids=["cr-after-name", "cr-in-name", "cr-in-offset", "cr-in-size",
        "cr-after-raw", "tab-after-name", "tab-separator"])
def test_cr_tab_in_argument_201(server, request_bytes):
    c = converse(server, request_bytes, ST[201])
    assert_usable(c)


# -- 200 NO SUCH COMMAND ----------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"GET_FILE_LISTING", b"Help", b"QUIT", b"foo", b"get", b"get_slices x 0 1",
    b"get_file_list", b"hel\x00p", b"help\x00", b"h\xc3\xa9lp", b"x " * 3 + b"x",
    b"nosuch ../etc/passwd 0 0 raw",
])
def test_200_unknown_command(server, request_bytes):
    c = converse(server, request_bytes + b"\r\n", ST[200])
    assert_usable(c)


def test_2xx_raises_and_keeps_connection(server):
    c = server.client()
    with pytest.raises(hftp.NoSuchCommand) as ei:
        c.request("frobnicate")
    assert (ei.value.code, ei.value.text) == (200, "NO SUCH COMMAND")
    assert not ei.value.fatal and not c.closed
    assert c.metadata("ten.txt") == 10


# -- 201 INVALID ARGUMENTS -------------------------------------------------

BAD_ARGS = [
    # FILENAME characters
    b"get_metadata ../etc/passwd", b"get_metadata /etc/passwd",
    b"get_metadata a/b", b"get_metadata a\\b", b"get_metadata a@b",
    b"get_metadata a?b", b"get_metadata a*", b"get_metadata a:b",
    b"get_metadata a+b", b"get_metadata ~", b"get_metadata ten.txt\x00",
    b"get_metadata \x00", b"get_metadata \xc3\xb1and\xc3\xba",
    b"get_metadata ten.tx\xff", b"get_metadata a,b", b"get_metadata a$b",
    # counts and empty elements
    b"get_metadata", b"get_metadata ten.txt ten.txt", b"get_metadata ten.txt ",
    b"get_metadata  ten.txt", b"get_metadata ", b"get_file_listing x",
    b"get_file_listing ", b"help x", b"help ", b"get_slice", b"get_slice ten.txt",
    b"get_slice ten.txt 0", b"get_slice ten.txt 0 1 raw x",
    b"get_slice ten.txt 0 1 raw raw", b"get_slice ten.txt 0 1 ",
    b"get_slice ten.txt 0  1", b"get_slice ten.txt  0 1",
    b"get_slice  ten.txt 0 1", b"get_slice ten.txt 0 1 raw ",
    # fourth element
    b"get_slice ten.txt 0 1 RAW", b"get_slice ten.txt 0 1 Raw",
    b"get_slice ten.txt 0 1 raww", b"get_slice ten.txt 0 1 ra",
    b"get_slice ten.txt 0 1 base64", b"get_slice ten.txt 0 1 0",
    # numbers
    b"get_slice ten.txt -1 1", b"get_slice ten.txt 0 -1",
    b"get_slice ten.txt +1 1", b"get_slice ten.txt 0 +1",
    b"get_slice ten.txt 0x1 1", b"get_slice ten.txt 0 0x1",
    b"get_slice ten.txt 0xA 1", b"get_slice ten.txt 1_0 1",
    b"get_slice ten.txt 1e1 1", b"get_slice ten.txt 1.0 1",
    b"get_slice ten.txt a 1", b"get_slice ten.txt 0 A",
    b"get_slice ten.txt \xef\xbc\x90 1", b"get_slice ten.txt 0 1,",
    b"get_slice ten.txt - 1", b"get_slice ten.txt 0 1.",
    # argument form before existence
    b"get_slice ../ten.txt 0 1", b"get_slice missing -1 1",
    b"get_slice missing 0 1 rawx", b"get_slice missing x y",
    b"get_metadata ../missing",
]


@pytest.mark.parametrize("request_bytes", BAD_ARGS,
                         ids=[repr(r)[2:-1][:60] for r in BAD_ARGS])
def test_201_invalid_arguments(server, request_bytes):
    c = converse(server, request_bytes + b"\r\n", ST[201])
    assert_usable(c)


def test_201_bad_char_after_5MiB_name(server):
    c = converse(server, b"get_metadata " + b"x" * (5 << 20) + b"/\r\n",
                 ST[201], timeout=10 * SCALE)
    assert_usable(c)


def test_201_all_pipelined(server):
    c = server.client()
    c.send_raw(b"".join(r + b"\r\n" for r in BAD_ARGS))
    got = c.read_at_most(len(ST[201]) * len(BAD_ARGS))
    assert got == ST[201] * len(BAD_ARGS)
    assert_usable(c)


# -- 202 FILE NOT FOUND ---------------------------------------------------------

@pytest.fixture
def odd_server(hftpd, tmp_path):
    """A single worker serving regular files next to every kind of entry
    that is not servable."""
    srv = hftpd(workers=1, files={"ten.txt": b"0123456789", "sub": None,
                                  "sub2": None})
    d = srv.directory
    (d / "sub" / "inner.txt").write_bytes(b"inner")
    os.mkfifo(d / "fifo")
    os.symlink("ten.txt", d / "link")
    os.symlink(str(d / "ten.txt"), d / "abslink")
    os.symlink("sub", d / "dirlink")
    os.symlink("nowhere", d / "dangling")
    us = socket.socket(socket.AF_UNIX)
    us.bind(str(d / "sock"))
    srv.unix_socket = us
    try:
        os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        srv.has_device = True
    except OSError:
        srv.has_device = False
    yield srv
    us.close()


NOT_SERVABLE = ["missing", ".", "..", "sub", "sub2", "fifo", "link", "abslink",
                "dirlink", "dangling", "sock", "null", "x" * 256, "x" * 300,
                "x" * 4096, "ten.txt.", "TEN.TXT", "inner.txt"]


@pytest.mark.parametrize("name", NOT_SERVABLE,
                         ids=[n[:20] + ("..%d" % len(n) if len(n) > 20 else "")
                              for n in NOT_SERVABLE])
def test_202_not_servable(odd_server, name):
    if name == "null" and not odd_server.has_device:
        name = "missing2"   # no mknod permission: a plain missing name
    c = converse(odd_server, b"get_metadata %s\r\n" % name.encode(), ST[202],
                 timeout=3 * SCALE)
    for req in (b"get_slice %s 0 0\r\n", b"get_slice %s 0 1\r\n",
                b"get_slice %s 0 0 raw\r\n"):
        c.send_raw(req % name.encode())
        assert c.read_at_most(len(ST[202])) == ST[202], req % name.encode()
    assert_usable(c)


def test_202_fifo_does_not_block_the_worker(odd_server):
    # The only worker must not hang opening the FIFO: another client of the
    # same worker is served right after.
    c = odd_server.client(timeout=3 * SCALE)
    c.send_raw(b"get_slice fifo 0 0\r\nget_slice fifo 0 1 raw\r\n"
               b"get_metadata fifo\r\n")
    assert c.read_at_most(3 * len(ST[202])) == ST[202] * 3
    c2 = odd_server.client(timeout=3 * SCALE)
    assert c2.metadata("ten.txt") == 10
    assert_usable(c)


def test_202_listing_leaves_out_unservable(odd_server):
    with odd_server.client() as c:
        assert c.listing() == ["ten.txt"]


def test_202_5MiB_name_answered_promptly(server):
    c = server.client(timeout=10 * SCALE)
    name = b"x" * (5 << 20)
    t0 = time.monotonic()
    c.send_raw(b"get_metadata " + name + b"\r\n")
    got = c.read_at_most(len(ST[202]))
    elapsed = time.monotonic() - t0
    assert got == ST[202]
    assert elapsed < 1.0 * SCALE, "5 MiB name took %.2fs" % elapsed
    # Same through get_slice, and the connection is still fine.
    t0 = time.monotonic()
    c.send_raw(b"get_slice " + name + b" 0 0\r\n")
    assert c.read_at_most(len(ST[202])) == ST[202]
    assert time.monotonic() - t0 < 1.0 * SCALE
    assert_usable(c)


def test_202_client_exception(server):
    c = server.client()
    with pytest.raises(hftp.FileNotFound) as ei:
        c.metadata("nope")
    assert (ei.value.code, ei.value.text) == (202, "FILE NOT FOUND")
    assert not c.closed


# -- 203 OFFSET EXCEEDS FILE SIZE ------------------------------------------------

U64MAX = b"18446744073709551615"
BEYOND = [
    b"get_slice ten.txt 0 11", b"get_slice ten.txt 11 0", b"get_slice ten.txt 10 1",
    b"get_slice ten.txt 5 6", b"get_slice ten.txt 9 2", b"get_slice empty 0 1",
    b"get_slice empty 1 0", b"get_slice ten.txt 0 11 raw",
    b"get_slice ten.txt 11 0 raw",
    b"get_slice ten.txt " + b"9" * 30 + b" 1", b"get_slice ten.txt 0 " + b"9" * 30,
    b"get_slice ten.txt " + b"1" * 30 + b" " + b"1" * 30,
    b"get_slice ten.txt 123456789012345678901234567890 0",
    b"get_slice ten.txt " + U64MAX + b" 0", b"get_slice ten.txt 0 " + U64MAX,
    b"get_slice ten.txt 1 " + U64MAX, b"get_slice ten.txt " + U64MAX + b" 1",
    b"get_slice ten.txt 2 18446744073709551614",
    b"get_slice ten.txt 18446744073709551616 0",
    b"get_slice ten.txt 9223372036854775807 1",
    b"get_slice ten.txt 9223372036854775808 0",
    b"get_slice ten.txt 0 9223372036854775808",
    b"get_slice ten.txt " + b"0" * 50 + b"11 0",
]


@pytest.mark.parametrize("request_bytes", BEYOND,
                         ids=[repr(r)[12:-1][:60] for r in BEYOND])
def test_203_beyond_end(server, request_bytes):
    c = converse(server, request_bytes + b"\r\n", ST[203])
    assert_usable(c)


def test_203_client_exception(server):
    c = server.client()
    with pytest.raises(hftp.OffsetExceedsFileSize) as ei:
        c.slice("ten.txt", 10**29, 1)
    assert (ei.value.code, ei.value.text) == (203, "OFFSET EXCEEDS FILE SIZE")
    assert c.slice("ten.txt", 9, 1) == b"9"


# -- check order ----------------------------------------------------------------

@pytest.mark.parametrize("request_bytes,code", [
    (b"nosuch ../etc/passwd x y z", 200),
    (b"foo ", 200),
    (b"GET_SLICE missing x y", 200),
    (b"get_slice missing x 1", 201),
    (b"get_slice ../x 99999999999999999999999 0", 201),
    (b"get_slice missing 0 1 RAW", 201),
    (b"get_metadata missing extra", 201),
    (b"get_slice missing 99999999999999999999999999 1", 202),
    (b"get_slice missing 0 0", 202),
    (b"get_slice . 5 5", 202),
    (b"get_slice ten.txt 99 0 raw", 203),
])
def test_check_order(server, request_bytes, code):
    c = converse(server, request_bytes + b"\r\n", ST[code])
    assert_usable(c)


# -- 199 and unreadable files ----------------------------------------------------

def test_199_unreadable_file(hftpd):
    # Root reads mode-000 files, so when the suite runs as root the server is
    # started through setpriv without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH
    # (the test is skipped only if setpriv is missing).
    srv = hftpd(files={"ten.txt": b"0123456789", "secret": b"s3cr3t!"},
                drop_dac=True)
    os.chmod(srv.directory / "secret", 0)
    # Listed, and its size is known (only stat is needed).
    converse(srv, b"get_file_listing\r\n", b"0 OK\r\nsecret\r\nten.txt\r\n\r\n")
    c = converse(srv, b"get_metadata secret\r\n", b"0 OK\r\n7\r\n")
    # Range is checked before readability.
    c.send_raw(b"get_slice secret 5 5\r\n")
    assert c.read_at_most(len(ST[203])) == ST[203]
    # Then 199, fatal: earlier answers first, then the 199 line, then close.
    c.send_raw(b"get_metadata ten.txt\r\nget_slice secret 0 7\r\nhelp\r\n")
    want = b"0 OK\r\n10\r\n" + ST[199]
    assert c.read_at_most(len(want)) == want
    c.sock.settimeout(5 * SCALE)
    assert c.at_eof()
    converse(srv, b"get_slice secret 0 1 raw\r\n", ST[199], closed=True)
    converse(srv, b"get_slice secret 0 0\r\n", ST[199], closed=True)
    c2 = srv.client()
    with pytest.raises(hftp.InternalServerError) as ei:
        c2.slice("secret", 0, 3)
    assert ei.value.fatal and c2.closed


# -- half-close, partial input ---------------------------------------------------

def test_half_close_answers_complete_requests(server):
    c = server.client()
    c.send_raw(b"help\r\nget_metadata ten.txt\r\nget_slice archivo.txt 5 20\r\n"
               b"get_meta")
    c.sock.shutdown(socket.SHUT_WR)
    want = (HELP_RESPONSE + b"0 OK\r\n10\r\n" +
            b"0 OK\r\nY2Fsb3IgcXVlIGhhY2UgaG95LCA=\r\n")
    assert c.read_all() == want


def test_half_close_incomplete_line_gets_nothing(server):
    for tail in (b"help", b"help\r", b"get_slice ten.txt 0 1", b" "):
        c = server.client()
        c.send_raw(tail)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_all() == b"", tail


def test_half_close_after_large_raw_slice(hftpd):
    data = os.urandom(3 << 20)
    srv = hftpd(files={"big": data})
    c = srv.client()
    c.send_raw(b"get_slice big 0 %d raw\r\nget_metadata big\r\n" % len(data))
    c.sock.shutdown(socket.SHUT_WR)
    got = c.read_all()
    head = b"0 OK\r\nContent-Length: %d\r\n\r\n" % len(data)
    assert got[:len(head)] == head
    assert got[len(head):len(head) + len(data)] == data
    assert got[len(head) + len(data):] == b"0 OK\r\n%d\r\n" % len(data)


def test_byte_by_byte_while_others_are_served(hftpd):
    srv = hftpd(workers=1)
    slow = srv.client()
    other = srv.client(timeout=2 * SCALE)
    req = b"get_slice archivo.txt 5 20\r\n"
    for i, byte in enumerate(req):
        slow.send_raw(bytes([byte]))
        time.sleep(0.01)
        if i == len(req) // 2:
            t0 = time.monotonic()
            assert other.metadata("archivo.txt") == 41
            assert time.monotonic() - t0 < 1 * SCALE
    want = b"0 OK\r\nY2Fsb3IgcXVlIGhhY2UgaG95LCA=\r\n"
    assert slow.read_at_most(len(want)) == want
    # CR and LF in separate segments are still one terminator.
    slow.send_raw(b"help\r")
    time.sleep(0.1)
    slow.send_raw(b"\n")
    assert slow.read_at_most(len(HELP_RESPONSE)) == HELP_RESPONSE
