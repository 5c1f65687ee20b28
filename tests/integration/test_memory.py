"""Memory per connection stays inside the documented formula when every
slot is a slow reader (README, "Limits and hostile clients")."""
import os
import socket
import time

import pytest

from conftest import SCALE, VALGRIND, ASAN

KIB = 1024
OUT_BLOCK = 256 * KIB          # CLIENT_OUT_CAP
IN_BLOCK = 64 * KIB            # CLIENT_IN_CAP
STRUCTS = 4 * KIB              # struct client and its share of the worker's tables


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _server_send_queues(port):
    """Send-queue bytes of the server's established sockets on
    127.0.0.1:port (not another address's socket that happens to have the
    same port number: other test sessions' clients on 127.0.1.x)."""
    queues = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "01" and local == "0100007F:%04X" % port:
                queues.append(int(fields[4].split(":")[0], 16))
    return queues


@pytest.mark.slow
@pytest.mark.skipif(VALGRIND or ASAN, reason="measures the plain build's memory")
def test_every_slot_a_slow_reader_stays_inside_the_formula(hftpd):
    slots, send_buffer = 64, 256 * KIB
    big = os.urandom(1 << 20) * 64
    srv = hftpd(files={"big.bin": big}, workers=1,
                config={"clients_per_worker": slots, "send_buffer": "256K",
                        "send_timeout": "300s"})
    worker = srv.wait_workers(1)[0]
    time.sleep(0.3)
    rss_before = _rss_kib(worker)
    held = []
    for _ in range(slots):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((srv.host, srv.port))
        # Each asks for the whole file, in two pipelined requests, and
        # never reads: the output block, the socket and the input fill up.
        s.sendall(b"get_slice big.bin 0 %d raw\r\n" % len(big) * 2)
        held.append(s)
    time.sleep(2 * SCALE)
    queues = _server_send_queues(srv.port)
    rss_after = _rss_kib(worker)
    for s in held:
        s.close()
    assert len(queues) == slots
    # The kernel doubles SO_SNDBUF for its bookkeeping: the cap on bytes queued.
    assert max(queues) <= 2 * send_buffer, max(queues)
    grown = (rss_after - rss_before) * KIB
    per_conn = OUT_BLOCK + IN_BLOCK + STRUCTS
    assert grown <= slots * per_conn, (
        "worker grew %d KiB for %d slow readers; formula allows %d KiB" %
        (grown // KIB, slots, slots * per_conn // KIB))
    print("\nslow readers: %d; worker RSS %d -> %d KiB (%.0f KiB each; formula %d);"
          " send queues max %d KiB, sum %d KiB" % (
              slots, rss_before, rss_after, (rss_after - rss_before) / slots,
              per_conn // KIB, max(queues) // KIB, sum(queues) // KIB))


@pytest.mark.slow
@pytest.mark.skipif(VALGRIND or ASAN, reason="measures the plain build's memory")
def test_slow_listers_share_one_listing(hftpd, tmp_path):
    # Before: every get_file_listing built the whole listing for its own
    # connection; 200 clients that never read a 100 000-file listing held
    # 1.19 GB.  Now the names are one snapshot shared by every lister.
    files, listers = 50000, 50
    directory = tmp_path / "many"
    directory.mkdir()
    for i in range(files):
        (directory / ("file-%06d.bin" % i)).write_bytes(b"")
    old = time.time() - 10            # a snapshot is shared once it is 1 s old
    os.utime(directory, (old, old))
    srv = hftpd(directory=directory, mkdir=False, workers=1)
    worker = srv.wait_workers(1)[0]
    time.sleep(0.3)
    rss_before = _rss_kib(worker)
    held = []
    for _ in range(listers):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((srv.host, srv.port))
        s.sendall(b"get_file_listing\r\n")
        held.append(s)
    time.sleep(1.5 * SCALE)
    grown = (_rss_kib(worker) - rss_before) * KIB
    for s in held:
        s.close()
    names = files * 40                # one snapshot: names, pointers, malloc
    allowed = names + listers * (OUT_BLOCK + IN_BLOCK + STRUCTS)
    assert grown <= allowed, "worker grew %d KiB for %d listers; allowed %d KiB" % (
        grown // KIB, listers, allowed // KIB)
    print("\n%d listers of %d files: worker grew %d KiB (allowed %d KiB)" % (
        listers, files, grown // KIB, allowed // KIB))
