"""The status page (GET / on the status listener) in a real browser.

Debian's chromium, headless, loads the page, lets its script poll /status
for a few seconds of virtual time and dumps the DOM: it must hold one row
per worker, named by the worker's pid (<tr data-pid="PID">), and the
master's line.  The page itself is one self-contained document: it loads
nothing from anywhere but the listener it came from.

Needs chromium (tests/install-deps.sh installs it); skipped otherwise.
"""

import re
import shutil
import subprocess

import pytest

from conftest import SCALE, free_port
from status_util import http_get, wait_status_pids

WORKERS = 3


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("needs chromium (tests/install-deps.sh installs it)")


def dump_dom(browser, url, profile):
    """The DOM after the page's script ran ~3 s of virtual time."""
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--user-data-dir=%s" % profile, "--virtual-time-budget=3000",
                        "--dump-dom", url],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=90 * SCALE)
    if r.returncode != 0 and not r.stdout:
        pytest.skip("chromium cannot run here: %s"
                    % r.stderr.decode(errors="replace").strip().splitlines()[-1:])
    return r.stdout.decode(errors="replace")


@pytest.fixture
def status_server(hftpd):
    sport = free_port()
    srv = hftpd(workers=WORKERS, config=["status_listen = 127.0.0.1:%d" % sport])
    pids = srv.wait_workers(WORKERS)
    assert len(pids) == WORKERS
    assert wait_status_pids(sport, pids), "/status never listed %s" % pids
    return srv, sport, pids


def test_page_is_self_contained(status_server):
    _, sport, _ = status_server
    status, body = http_get(sport, "/")
    assert status == 200
    page = body.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    # nothing fetched from elsewhere: no scheme, no src or stylesheet link
    assert not re.search(r"(?i)\b(https?:|src=|<link\b|@import)", page), page
    assert 'fetch("/status"' in page


def test_browser_shows_a_row_per_worker(status_server, tmp_path):
    srv, sport, pids = status_server
    browser = chromium()
    dom = dump_dom(browser, "http://127.0.0.1:%d/" % sport, tmp_path / "profile")
    rows = [int(p) for p in re.findall(r'<tr [^>]*data-pid="(\d+)"', dom)]
    assert sorted(rows) == sorted(pids), dom[-3000:]
    # the master's line came from the same /status
    assert "master pid %d," % srv.pid in dom, dom[-3000:]
    # a bar per worker, its width its open connections against capacity
    assert len(re.findall(r'class="bar"', dom)) == WORKERS, dom[-3000:]
