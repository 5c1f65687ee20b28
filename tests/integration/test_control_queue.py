"""Control messages from the master (REOPEN, DRAIN) reach a worker even when
its channel was full at the moment they were sent.

The worker is stopped with SIGSTOP and the master is made to hand it
connections until the channel to it would block; then the signal is sent;
then the worker is continued.  A message the master dropped instead of
queueing would leave the worker writing into the rotated log, or serving
until shutdown_timeout."""

import os
import resource
import signal
import socket
import time

import pytest

from conftest import SCALE, VALGRIND, check_tool_logs, process_alive, wait_for

# Enough connections to fill any worker channel (the kernel queues at most
# net.unix.max_dgram_qlen datagrams, 512 by default, and the socket buffer
# is smaller than that many descriptor-carrying messages).
FILL_CONNECTIONS = 600


def fill_connections():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(FILL_CONNECTIONS, soft - 64))


def start_stopped_worker(hftpd, tmp_path, extra=()):
    """A server with one worker, stopped, its channel full of CONNs.
    Returns (server, worker pid, client sockets)."""
    n = fill_connections()
    srv = hftpd(workers=1, config=["error_log = %s" % (tmp_path / "error.log"),
                                   "access_log = %s" % (tmp_path / "access.log"),
                                   "log_level = debug",
                                   # every connection comes from 127.0.0.1
                                   "max_clients_per_address = 0"] + list(extra),
                args=("-n", str(4 * n)))
    (worker,) = srv.wait_workers(1)
    os.kill(worker, signal.SIGSTOP)
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection((srv.host, srv.port),
                                                  timeout=5 * SCALE))
    except OSError:
        for s in socks:
            s.close()
        os.kill(worker, signal.SIGCONT)
        raise
    # The master hands off until the channel would block, then keeps one
    # connection pending and stops accepting; give it time to get there.
    time.sleep(0.5 * SCALE)
    return srv, worker, socks


def log_text(path):
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


@pytest.mark.slow
def test_reopen_reaches_a_worker_whose_channel_was_full(hftpd, tmp_path):
    srv, worker, socks = start_stopped_worker(hftpd, tmp_path)
    access = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    try:
        os.rename(access, rotated)
        os.kill(srv.pid, signal.SIGUSR1)
        # the master creates the new file; the worker has not reopened yet
        assert wait_for(access.exists, 5 * SCALE)
        time.sleep(0.3 * SCALE)
    finally:
        for s in socks:
            s.close()
        os.kill(worker, signal.SIGCONT)
    # Every connection the worker now serves must be logged in the new file.
    deadline = time.monotonic() + 10 * SCALE
    i = 0
    while time.monotonic() < deadline:
        c = srv.client()
        c.send_raw(b"get_metadata after-reopen-%d\r\n" % i)
        c.read_at_most(1)
        c.close()
        i += 1
        if wait_for(lambda: "after-reopen" in log_text(access), 0.5 * SCALE):
            break
    assert "after-reopen" in log_text(access), (
        "the worker never reopened its access log\nnew:\n%s\nold (tail):\n%s"
        % (log_text(access)[-2000:], log_text(rotated)[-2000:]))
    assert process_alive(worker)


@pytest.mark.slow
@pytest.mark.skipif(VALGRIND, reason="timing-bound under valgrind")
def test_drain_reaches_a_worker_whose_channel_was_full(hftpd, tmp_path):
    # A dropped DRAIN would leave the worker up until shutdown_timeout.
    srv, worker, socks = start_stopped_worker(hftpd, tmp_path,
                                              ["shutdown_timeout = 120s"])
    try:
        os.kill(srv.pid, signal.SIGQUIT)
        time.sleep(0.3 * SCALE)
    finally:
        for s in socks:
            s.close()
        os.kill(worker, signal.SIGCONT)
    try:
        rc = srv.proc.wait(20 * SCALE)
    except Exception:
        pytest.fail("the master did not exit after SIGQUIT: the worker never "
                    "got DRAIN\n%s" % log_text(tmp_path / "error.log")[-4000:])
    assert rc == 0
    assert wait_for(lambda: not process_alive(worker), 5 * SCALE)
    errors = log_text(tmp_path / "error.log")
    assert "draining" in errors, errors[-4000:]
    assert "drain timeout" not in errors, errors[-4000:]
    # The master exited on its own: the fixture's SIGTERM has nothing to do.
    srv.stopped = True
    srv._stderr.close()
    problems = check_tool_logs(str(srv.logdir))
    assert not problems, "\n".join(problems)
