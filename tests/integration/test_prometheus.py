"""A real Prometheus scrapes hftpd's /metrics.

The test writes a prometheus.yml that scrapes the status listener every
second, starts Debian's prometheus on a free loopback port with its storage
in the test's tmp directory (a retention of one hour; killed at the end),
sends REQUESTS get_metadata requests, and asks Prometheus' HTTP API for
`up` (1: the exposition parsed) and sum(hftpd_requests_total) (at least the
requests sent).

Needs prometheus (tests/install-deps.sh installs it); skipped with the
reason where it is missing or cannot start.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import SCALE, free_port, wait_for
from status_util import wait_status_pids

REQUESTS = 60
READY_S = 30 * SCALE


def query(port, expr):
    """The value of an instant query that yields one sample; None if none."""
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (
        port, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def ready(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def prometheus(tmp_path):
    """Starts prometheus(target) scraping 127.0.0.1:target every second;
    returns its HTTP port.  Killed at teardown."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs prometheus (tests/install-deps.sh installs it)")
    procs = []

    def start(target):
        port = free_port()
        conf = tmp_path / "prometheus.yml"
        conf.write_text("global:\n"
                        "  scrape_interval: 1s\n"
                        "  scrape_timeout: 1s\n"
                        "scrape_configs:\n"
                        "  - job_name: hftpd\n"
                        "    metrics_path: /metrics\n"
                        "    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n" % target)
        log = open(tmp_path / "prometheus.log", "wb")
        proc = subprocess.Popen(
            [binary, "--config.file=%s" % conf,
             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
             "--storage.tsdb.retention.time=1h",
             "--web.listen-address=127.0.0.1:%d" % port],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        procs.append(proc)
        if not wait_for(lambda: proc.poll() is not None or ready(port), READY_S, 0.2) \
                or proc.poll() is not None:
            tail = (tmp_path / "prometheus.log").read_text(errors="replace")[-600:]
            pytest.skip("prometheus did not start: %s" % tail)
        return port

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_prometheus_scrapes_the_request_counters(hftpd, prometheus):
    sport = free_port()
    srv = hftpd(workers=2, config=["status_listen = 127.0.0.1:%d" % sport])
    assert wait_status_pids(sport, srv.wait_workers(2))
    pport = prometheus(sport)
    c = srv.client()
    for _ in range(REQUESTS):
        assert c.metadata("ten.txt") == 10
    c.quit()
    t0 = time.monotonic()
    assert wait_for(lambda: query(pport, 'up{job="hftpd"}') == 1, 20 * SCALE, 0.5), \
        "targets: %s" % urllib.request.urlopen(
            "http://127.0.0.1:%d/api/v1/targets" % pport, timeout=5).read()[:1000]
    # the counters reach the master once a second, the scrape once a second
    assert wait_for(lambda: (query(pport, "sum(hftpd_requests_total)") or 0) >= REQUESTS,
                    20 * SCALE, 0.5), query(pport, "sum(hftpd_requests_total)")
    by_worker = query(pport, 'count(count by (worker) (hftpd_requests_total))')
    assert by_worker and by_worker >= 1
    print("up and %d requests seen after %.1f s"
          % (query(pport, "sum(hftpd_requests_total)"), time.monotonic() - t0))
