"""master_scheduling: the master runs as SCHED_BATCH by default (a new
connection does not preempt a busy CPU to wake it), as SCHED_OTHER with
`normal`, switched by a reload; workers always run as SCHED_OTHER, also
those a reload or a respawn forks; a policy the launcher chose (here
SCHED_IDLE, through chrt) is left to every process.  Read back with
sched_getscheduler(2) on the live processes.
"""

import os
import shutil
import signal

import pytest

from conftest import SCALE, WORKED_EXAMPLE, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"),
                                reason="no SCHED_BATCH on this system")


def policy(pid):
    return os.sched_getscheduler(pid)


def settle(pids, want):
    """Each of pids reaches policy want: a worker forked by a batch master
    resets itself first thing, but a moment after the fork."""
    for pid in pids:
        assert wait_for(lambda: policy(pid) == want, 5 * SCALE), \
            "pid %d: policy %d, not %d" % (pid, policy(pid), want)


def assert_serves(srv):
    c = srv.client()
    assert c.metadata("archivo.txt") == len(WORKED_EXAMPLE)


def test_default_master_batch_workers_other(hftpd):
    srv = hftpd()
    workers = srv.wait_workers(2)
    assert policy(srv.pid) == os.SCHED_BATCH
    settle(workers, os.SCHED_OTHER)
    assert_serves(srv)
    # a respawned worker, forked by the batch master, is SCHED_OTHER too
    srv.kill(workers[0])
    fresh = srv.wait_workers(2, exclude=workers[:1])
    assert workers[0] not in fresh
    settle(fresh, os.SCHED_OTHER)


def test_normal_and_reload_both_ways(hftpd):
    srv = hftpd(config={"master_scheduling": "normal"})
    gen1 = srv.wait_workers(2)
    assert policy(srv.pid) == os.SCHED_OTHER
    settle(gen1, os.SCHED_OTHER)
    text = srv.config_path.read_text()
    srv.config_path.write_text(text.replace("master_scheduling = normal",
                                            "master_scheduling = batch"))
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_for(lambda: policy(srv.pid) == os.SCHED_BATCH, 5 * SCALE), \
        srv.stderr_text()
    gen2 = srv.wait_workers(2, exclude=gen1)
    assert not set(gen2) & set(gen1)
    settle(gen2, os.SCHED_OTHER)
    assert_serves(srv)
    srv.config_path.write_text(text)
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_for(lambda: policy(srv.pid) == os.SCHED_OTHER, 5 * SCALE), \
        srv.stderr_text()
    assert_serves(srv)


def test_launcher_policy_left_alone(hftpd):
    chrt = shutil.which("chrt")
    if chrt is None:
        pytest.skip("no chrt (util-linux)")
    srv = hftpd(launcher=[chrt, "--idle", "0"])
    workers = srv.wait_workers(2)
    assert policy(srv.pid) == os.SCHED_IDLE
    assert [policy(w) for w in workers] == [os.SCHED_IDLE] * 2
    assert "master_scheduling: started under SCHED_IDLE, left as it is" \
        in srv.stderr_text()
    assert_serves(srv)
