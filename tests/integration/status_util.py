"""Helpers of the status listener's tests: one HTTP GET (the listener
answers and closes), /status as JSON, and a wait until /status shows a
given set of worker pids."""

import http.client
import json

from conftest import SCALE, wait_for


def http_get(port, path, timeout=None, host="127.0.0.1"):
    """(status, body bytes) of GET path on host:port."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout or 5 * SCALE)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def status_json(port):
    status, body = http_get(port, "/status")
    assert status == 200, (status, body[:200])
    return json.loads(body)


def wait_status_pids(port, pids, timeout=None):
    """Waits until /status lists exactly these worker pids; True if so."""
    want = sorted(pids)

    def ok():
        try:
            return sorted(w["pid"] for w in status_json(port)["workers"]) == want
        except OSError:
            return False
    return wait_for(ok, timeout or 5 * SCALE, interval=0.1)
