"""hftp get: framing choice, parallel segments, resume, retries, safe
output, progress and exit codes, against a live hftpd (and fake servers of
the older HFTP generations)."""

import hashlib
import os
import pty
import select
import signal
import stat
import threading
import time

import pytest

from client_util import (
    MiB, FakeServer, access_lines, addr, hftp_popen, hftp_run,
    logged_server, sigint_ignored, slice_requests,
)
from conftest import SCALE, free_port, have_ipv6_loopback, wait_for

SMALL = bytes(range(256)) * 300 + b"\r\n\x00end"


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def big():
    return os.urandom(24 * MiB + 12345)


# -- framing -------------------------------------------------------------------

def test_raw_chosen_by_default(hftpd, tmp_path):
    srv = logged_server(hftpd, tmp_path, {"f": SMALL})
    r = hftp_run(addr(srv), "get", "f", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == SMALL
    lines = access_lines(srv)
    assert ("help", 0) in [(q, s) for q, s, _ in lines]
    reqs = slice_requests(lines)
    assert reqs and all(raw for _, _, raw in reqs)


def test_fragments_server(hftpd, tmp_path):
    # hftpd in the fragment era's framing still answers help, so auto uses
    # raw; --framing base64 asks without raw and decodes the fragments.
    srv = logged_server(hftpd, tmp_path, {"f": SMALL},
                        slice_encoding="fragments")
    for framing in ("auto", "base64"):
        out = tmp_path / framing
        r = hftp_run(addr(srv), "get", "f", "-o", out, "--framing", framing)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == SMALL
    reqs = slice_requests(access_lines(srv))
    # Two workers buffer their access-log lines: their order is not the
    # requests' order.
    assert sorted(raw for _, _, raw in reqs) == [False, True]


@pytest.mark.parametrize("generation", ["base64", "fragments"])
def test_older_generation_server_gets_its_own_framing(tmp_path, generation):
    data = os.urandom(3 * MiB + 7)
    fake = FakeServer({"f": data}, generation)
    try:
        r = hftp_run("127.0.0.1:%d" % fake.port, "get", "f",
                     "-o", tmp_path / "out", "--chunk", "1M")
    finally:
        fake.close()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == data
    slices = [q for q in fake.requests if q.startswith("get_slice")]
    assert slices and not [q for q in slices if q.endswith(" raw")]
    assert "help" in fake.requests


# -- parallel segments ---------------------------------------------------------

@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_j4_byte_identical(hftpd, tmp_path, big):
    srv = logged_server(hftpd, tmp_path, {"big": big})
    r = hftp_run(addr(srv), "get", "big", "-j", "4", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert sha((tmp_path / "out").read_bytes()) == sha(big)
    assert not list(tmp_path.glob("out.hftp-*"))
    reqs = slice_requests(access_lines(srv))
    # four segments, each starting at its own quarter
    starts = {off for off, _, _ in reqs}
    quarter = len(big) // 4
    assert {0, quarter, 2 * quarter, 3 * quarter} <= starts
    assert sum(size for _, size, _ in reqs) == len(big)


def test_file_changing_size_is_an_error(hftpd, tmp_path):
    data = os.urandom(8 * MiB)
    srv = hftpd(files={"grow": data})
    p = hftp_popen(addr(srv), "get", "grow", "-o", tmp_path / "out",
                   "--limit-rate", "8M")
    assert wait_for(lambda: (tmp_path / "out.hftp-part").exists(), 10 * SCALE)
    with open(srv.directory / "grow", "ab") as f:
        f.write(b"more")
    _, err = p.communicate(timeout=60 * SCALE)
    assert p.returncode == 1, err
    assert b"changed size" in err
    assert not (tmp_path / "out").exists()


# -- resume and retry ---------------------------------------------------------

def _state_done(path):
    import json
    doc = json.loads(path.read_text())
    return doc["size"], sum(d for _, _, d in doc["segments"])


def _start_and_stop(srv, out, sig, rate="2M", **kw):
    p = hftp_popen(addr(srv), "get", "big", "-o", out, "--limit-rate", rate, **kw)
    part = out.parent / (out.name + ".hftp-part")
    assert wait_for(lambda: part.exists(), 10 * SCALE)
    time.sleep(1.0)
    assert p.poll() is None, "finished before it could be interrupted"
    p.send_signal(sig)
    _, err = p.communicate(timeout=30 * SCALE)
    return p.returncode, err


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_ctrl_c_keeps_part_and_c_fetches_only_the_rest(hftpd, tmp_path, big):
    srv = logged_server(hftpd, tmp_path, {"big": big})
    out = tmp_path / "out"
    code, err = _start_and_stop(srv, out, signal.SIGINT)
    assert code == 130, err
    assert b"Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert b"interrupted" in err and b"-c" in err
    assert not out.exists()
    size, done = _state_done(tmp_path / "out.hftp-state")
    assert size == len(big) and 0 < done < len(big)
    first = len(slice_requests(access_lines(srv)))

    srv2 = logged_server(hftpd, tmp_path, {"big": big})
    r = hftp_run(addr(srv2), "-c", "get", "big", "-o", out)
    assert r.returncode == 0, r.stderr
    assert sha(out.read_bytes()) == sha(big)
    assert not list(tmp_path.glob("out.hftp-*"))
    # The second run asked for exactly the bytes the first did not write.
    reqs = slice_requests(access_lines(srv2))
    assert first > 0
    assert sum(n for _, n, _ in reqs) == len(big) - done


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_killed_client_resumes(hftpd, tmp_path, big):
    srv = logged_server(hftpd, tmp_path, {"big": big})
    out = tmp_path / "out"
    code, _ = _start_and_stop(srv, out, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert (tmp_path / "out.hftp-part").exists()
    _, done = _state_done(tmp_path / "out.hftp-state")
    srv2 = logged_server(hftpd, tmp_path, {"big": big})
    r = hftp_run(addr(srv2), "get", "big", "-o", out, "-c")
    assert r.returncode == 0, r.stderr
    assert sha(out.read_bytes()) == sha(big)
    # the resumed run fetched only what the state file did not record
    second = slice_requests(access_lines(srv2))
    assert done > 0
    assert sum(n for _, n, _ in second) == len(big) - done


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_sigint_ignored_by_the_parent_stays_ignored(hftpd, tmp_path, big):
    """A background job of a script starts with SIGINT ignored (POSIX), and
    hftp keeps it so, as every program does: Ctrl-C meant for the script's
    terminal does not stop it; SIGTERM still does, keeping the part."""
    srv = hftpd(files={"big": big})
    out = tmp_path / "out"
    p = hftp_popen(addr(srv), "get", "big", "-o", out, "--limit-rate", "2M",
                   preexec_fn=sigint_ignored)
    part = tmp_path / "out.hftp-part"
    assert wait_for(lambda: part.exists(), 10 * SCALE)
    p.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30 * SCALE)
    assert p.returncode == 143, err
    assert part.exists() and not out.exists()


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_c_refuses_a_file_of_another_size(hftpd, tmp_path, big):
    srv = hftpd(files={"big": big})
    out = tmp_path / "out"
    code, _ = _start_and_stop(srv, out, signal.SIGTERM)
    assert code == 143
    with open(srv.directory / "big", "ab") as f:
        f.write(b"x")
    r = hftp_run(addr(srv), "get", "big", "-o", out, "-c")
    assert r.returncode == 1
    assert b"size" in r.stderr and not out.exists()


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_worker_killed_mid_download_is_retried(hftpd, tmp_path, big):
    srv = hftpd(files={"big": big}, workers=2)
    out = tmp_path / "out"
    p = hftp_popen(addr(srv), "-v", "get", "big", "-o", out,
                   "--limit-rate", "12M")
    part = tmp_path / "out.hftp-part"
    assert wait_for(lambda: part.exists(), 10 * SCALE)
    time.sleep(0.5)
    for w in srv.workers():
        srv.kill(w)
    _, err = p.communicate(timeout=60 * SCALE)
    assert p.returncode == 0, err
    assert b"retry 1 of 5" in err
    assert sha(out.read_bytes()) == sha(big)


def test_server_gone_exits_network_error(tmp_path):
    r = hftp_run("127.0.0.1:%d" % free_port(), "get", "x", "--retries", "1",
                 cwd=tmp_path)
    assert r.returncode == 5, r.stderr
    assert b"refused" in r.stderr and b"Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []


# -- safe output ----------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_node_is_written_not_replaced(hftpd, tmp_path):
    srv = hftpd(files={"f": SMALL})
    d = tmp_path / "devices"
    d.mkdir()
    dev = d / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    r = hftp_run(addr(srv), "get", "f", "-o", dev)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert os.lstat(dev).st_rdev == os.makedev(1, 3)
    assert os.listdir(d) == ["null"]


def test_fifo_is_written_in_place(hftpd, tmp_path):
    srv = hftpd(files={"f": SMALL})
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()),
                              daemon=True)
    reader.start()
    r = hftp_run(addr(srv), "get", "f", "-o", fifo)
    reader.join(10 * SCALE)
    assert r.returncode == 0, r.stderr
    assert got == [SMALL] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_directory_and_stdout(hftpd, tmp_path):
    srv = hftpd(files={"f": SMALL})
    d = tmp_path / "dir"
    d.mkdir()
    r = hftp_run(addr(srv), "get", "f", "-o", d)
    assert r.returncode == 0, r.stderr
    assert (d / "f").read_bytes() == SMALL
    r = hftp_run(addr(srv), "get", "f", "-o", "-")
    assert (r.returncode, r.stdout) == (0, SMALL)


def test_missing_directory_fails_before_downloading(hftpd, tmp_path):
    srv = logged_server(hftpd, tmp_path, {"f": SMALL})
    r = hftp_run(addr(srv), "get", "f", "-o", "%s/nodir/" % tmp_path)
    assert r.returncode == 4, r.stderr
    assert b"no such directory" in r.stderr
    assert slice_requests(access_lines(srv)) == []


def test_no_clobber_and_atomic_replace(hftpd, tmp_path):
    srv = hftpd(files={"f": SMALL})
    out = tmp_path / "out"
    out.write_bytes(b"mine")
    r = hftp_run(addr(srv), "get", "f", "-o", out, "--no-clobber")
    assert r.returncode == 1 and out.read_bytes() == b"mine"
    # a failed download leaves the old file as it was
    r = hftp_run(addr(srv), "get", "nope", "-o", out)
    assert r.returncode == 1 and out.read_bytes() == b"mine"
    assert r.stderr.strip() == (b"hftp: nope: 202 FILE NOT FOUND on "
                                + addr(srv).encode())
    r = hftp_run(addr(srv), "get", "f", "-o", out)
    assert r.returncode == 0 and out.read_bytes() == SMALL


# -- interface ------------------------------------------------------------------

def test_options_anywhere_and_command_first(hftpd, tmp_path):
    srv = hftpd(files={"f": SMALL})
    for args in (["get", addr(srv), "f", "-o", tmp_path / "a", "-q"],
                 ["-q", "-o", tmp_path / "b", addr(srv), "get", "f"],
                 ["get", "127.0.0.1", "--port", srv.port, "f", "-o",
                  tmp_path / "c"]):
        r = hftp_run(*args)
        assert r.returncode == 0, (args, r.stderr)
    for name in "abc":
        assert (tmp_path / name).read_bytes() == SMALL


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_literal(hftpd, tmp_path):
    srv = hftpd(host="::1", files={"f": SMALL})
    r = hftp_run("get", "[::1]:%d" % srv.port, "f", "-o", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x").read_bytes() == SMALL


def test_protocol_violation_exit_code(tmp_path):
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        s, _ = ls.accept()
        s.recv(100)
        s.sendall(b"HTTP/1.0 200 OK\r\n")
        s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = hftp_run("127.0.0.1:%d" % ls.getsockname()[1], "ls")
    ls.close()
    assert r.returncode == 3, r.stderr
    assert b"protocol" in r.stderr


# -- progress --------------------------------------------------------------------

def _stderr_on_pty(*args):
    master, slave = pty.openpty()
    p = hftp_popen(*args, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        r, _, _ = select.select([master], [], [], 30 * SCALE)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:         # EIO: the pty's other side is closed
            break
        if not chunk:
            break
        seen += chunk
    p.wait(30 * SCALE)
    os.close(master)
    return p.returncode, seen


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_progress_on_a_terminal_not_on_a_pipe(hftpd, tmp_path, big):
    srv = hftpd(files={"big": big})
    start = time.monotonic()
    code, seen = _stderr_on_pty(addr(srv), "get", "big", "-o", tmp_path / "a",
                                "--limit-rate", "40M")
    took = time.monotonic() - start
    assert code == 0, seen
    assert b"\r" in seen and b"100%" in seen and b"MiB/s" in seen
    assert seen.count(b"\r") >= 3                   # redrawn while it ran
    assert seen.count(b"\r") <= 10 * took * 2 + 4   # at most 10 a second
    code, seen = _stderr_on_pty(addr(srv), "get", "big", "-o", tmp_path / "b",
                                "-q")
    assert (code, seen) == (0, b"")
    r = hftp_run(addr(srv), "get", "big", "-o", tmp_path / "c")
    assert (r.returncode, r.stderr) == (0, b"")


@pytest.mark.slow        # 24 MiB transfers: too slow under valgrind
def test_reader_leaving_stdout_is_not_retried(hftpd, big):
    # hftp cat big | head -c 100: the broken pipe ends the command quietly.
    srv = hftpd(files={"big": big})
    p = hftp_popen(addr(srv), "-v", "cat", "big")
    assert len(p.stdout.read(100)) == 100
    p.stdout.close()
    err = p.stderr.read()
    p.wait(30 * SCALE)
    assert p.returncode == 0, err
    assert b"retry" not in err and b"Traceback" not in err
