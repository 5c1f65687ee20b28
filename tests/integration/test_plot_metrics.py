"""bench/plot-metrics against a running server: it samples the status
listener's /metrics once a second, saves the samples (--data) and draws a
PNG with gnuplot.  The samples must show the requests this test sent and
the workers' open connections and capacity.

Needs gnuplot (tests/install-deps.sh installs it); skipped otherwise.
"""

import json
import shutil
import subprocess

import pytest

from conftest import REPO, SCALE, free_port
from status_util import wait_status_pids

SECONDS = 4
REQUESTS = 40


def test_plot_of_a_running_server(hftpd, tmp_path):
    if shutil.which("gnuplot") is None:
        pytest.skip("needs gnuplot (tests/install-deps.sh installs it)")
    sport = free_port()
    srv = hftpd(workers=2, config=["status_listen = 127.0.0.1:%d" % sport])
    assert wait_status_pids(sport, srv.wait_workers(2))
    png, data = tmp_path / "m.png", tmp_path / "m.json"
    plotter = subprocess.Popen(
        [str(REPO / "bench" / "plot-metrics"), "--url",
         "http://127.0.0.1:%d/metrics" % sport, "--seconds", str(SECONDS),
         "-o", str(png), "--data", str(data)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c = srv.client()                    # held open: one open connection
    for _ in range(REQUESTS):
        assert c.metadata("ten.txt") == 10
    out, err = plotter.communicate(timeout=SECONDS + 60 * SCALE)
    c.quit()
    assert plotter.returncode == 0, err.decode()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = json.loads(data.read_text())
    assert len(points) >= SECONDS - 1, points
    assert points[-1]["requests"] >= REQUESTS, points[-1]
    assert sorted(points[-1]["capacity"]) == ["worker 0 (gen 1)", "worker 1 (gen 1)"]
    assert sum(points[-1]["open"].values()) == 1, points[-1]
