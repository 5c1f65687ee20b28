"""A full worker is handed a client against its last count of idle
clients it could close; that count is a second old.  When those clients
woke up in between, the worker used to find no one to close and closed
the new connection unanswered ("no free slot"), although no client is
ever refused: it must wait until a slot frees, as in the backlog."""
import socket
import time

from conftest import SCALE, OK



def _ask(s, line=b"get_metadata f\r\n"):
    s.sendall(line)
    got = b""
    while not got.endswith(b"\r\n") or got.count(b"\r\n") < 2:
        b = s.recv(4096)
        assert b, "closed by the server"
        got += b
    return got


def test_client_handed_against_a_stale_idle_count_waits_not_refused(hftpd):
    srv = hftpd(files={"f": b"12345"}, workers=1, args=("-n", "4"))
    held = []
    for _ in range(4):
        s = socket.create_connection((srv.host, srv.port), timeout=10 * SCALE)
        held.append(s)
    # Long enough for the worker's sweep to report all four as idle ones
    # it would close for a newcomer (quiet 1 s, reported once a second).
    time.sleep(2.5)
    # All four wake up: none is idle any more, but the master's count is
    # the old one until the next sweep.
    for s in held:
        assert _ask(s) == OK + b"5\r\n"
    new = socket.create_connection((srv.host, srv.port), timeout=10 * SCALE)
    new.sendall(b"get_metadata f\r\n")
    new.settimeout(10 * SCALE)
    got = new.recv(4096)
    assert got == OK + b"5\r\n", "the new client was closed unanswered: %r" % got
    assert "no free slot" not in srv.stderr_text()
    # It was served once one of the four had been quiet long enough.
    closed = 0
    for s in held:
        s.settimeout(0.2)
        try:
            closed += s.recv(1) == b""
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
    assert closed == 1
    for s in held + [new]:
        s.close()
