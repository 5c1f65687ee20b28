"""The access log records the status each response really carried.

Regression: a successful get_metadata or get_file_listing that followed a
202 was logged as 202, because those handlers wrote "0 OK" themselves
instead of through the one function that records the status.
"""
import re
import time

from conftest import SCALE


def _access_lines(path, count, timeout):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    return lines


def test_each_response_logged_with_its_own_status(hftpd, tmp_path):
    log = tmp_path / "access.log"
    srv = hftpd(workers=1, config={"access_log": str(log)})
    requests = [
        (b"get_metadata missing\r\n", b"202 FILE NOT FOUND\r\n"),
        (b"get_metadata archivo.txt\r\n", b"0 OK\r\n"),
        (b"get_file_listing\r\n", b"0 OK\r\n"),
        (b"get_slice missing 0 1\r\n", b"202 FILE NOT FOUND\r\n"),
        (b"help\r\n", b"0 OK\r\n"),
        (b"nope\r\n", b"200 NO SUCH COMMAND\r\n"),
        (b"get_slice ten.txt 0 3\r\n", b"0 OK\r\n"),
        (b"get_metadata\r\n", b"201 INVALID ARGUMENTS FOR COMMAND\r\n"),
        (b"get_slice ten.txt 9 3\r\n", b"203 OFFSET EXCEEDS FILE SIZE\r\n"),
    ]
    # One connection, answered in order; quit ends it and is logged too.
    c = srv.client()
    c.send_raw(b"".join(line for line, _ in requests) + b"quit\r\n")
    answer = c.read_all()
    c.close()
    for _, status in requests:
        assert status in answer
    lines = _access_lines(log, len(requests) + 1, 5 * SCALE)
    assert len(lines) == len(requests) + 1, lines
    lines = lines[:-1]
    got = [int(re.search(r'" (\d+) \d+ \d+$', ln).group(1)) for ln in lines]
    want = [int(status.split(b" ")[0]) for _, status in requests]
    assert got == want, "\n".join(lines)
