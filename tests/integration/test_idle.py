"""A nearly idle server costs nearly nothing: one client sending one `help`
a second must not make the workers spin.  While a client is hot the worker
polls it every turn, but it sleeps in poll until that client or a deadline
(the once-a-second sweep, timeouts, limit_rate) needs it, rather than
alternating poll(0) and poll(1 ms) for a full scan with no cold client to
scan.

Measured from /proc: CPU as utime + stime (/proc/PID/stat), wake-ups as
voluntary + nonvoluntary context switches (/proc/PID/status), per worker.
"""

import time

import pytest

from conftest import HELP_RESPONSE, SCALE, VALGRIND, connect, cpu_seconds

SECONDS = 10
CPU_SHARE_MAX = 0.01        # of one core, all workers together
WAKEUPS_MAX = 30            # a second, per worker


def ctxt_switches(pid):
    """voluntary + nonvoluntary context switches of pid so far."""
    n = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches:",
                                "nonvoluntary_ctxt_switches:")):
                n += int(line.split()[1])
    return n


@pytest.mark.skipif(VALGRIND, reason="valgrind's own cost swamps the figure")
@pytest.mark.slow
@pytest.mark.parametrize("idle", [0, 20])
def test_one_request_a_second_does_not_spin(hftpd, idle):
    """idle: connections that stay silent, cold after 2 s (polled only in
    the full scans) while the one client asks once a second."""
    srv = hftpd(workers=2)
    workers = srv.wait_workers(2)
    assert len(workers) == 2
    quiet = [connect(srv.port) for _ in range(idle)]
    c = srv.client(timeout=5 * SCALE)
    c.send_raw(b"help\r\n")
    assert c.read_at_most(len(HELP_RESPONSE)) == HELP_RESPONSE
    cpu0 = {p: cpu_seconds(p) for p in workers}
    sw0 = {p: ctxt_switches(p) for p in workers}
    t0 = time.monotonic()
    for i in range(SECONDS):
        # paced on the clock, so the client is hot the whole time
        time.sleep(max(0.0, t0 + i + 1 - time.monotonic()))
        c.send_raw(b"help\r\n")
        assert c.read_at_most(len(HELP_RESPONSE)) == HELP_RESPONSE
    elapsed = time.monotonic() - t0
    for s in quiet:
        s.close()
    cpu = sum(cpu_seconds(p) - cpu0[p] for p in workers)
    rates = {p: (ctxt_switches(p) - sw0[p]) / elapsed for p in workers}
    print("\n%d idle clients: workers' CPU %.2f %% of a core over %.1f s; wake-ups a second "
          "per worker: %s" % (idle, 100 * cpu / elapsed, elapsed,
                              ", ".join("%d: %.1f" % kv for kv in rates.items())))
    assert cpu / elapsed < CPU_SHARE_MAX * SCALE, \
        "workers used %.2f %% of a core" % (100 * cpu / elapsed)
    for pid, rate in rates.items():
        assert rate < WAKEUPS_MAX, \
            "worker %d woke %.1f times a second" % (pid, rate)
