"""Privilege separation as the workers see it: the access log never gets a
torn line, even when its file system fills up (every line in the file is
whole; the loss is counted and warned once).

Needs root (mount); skipped otherwise.
"""

import os
import re
import subprocess

import pytest

from conftest import SCALE, connect, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

ACCESS_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 127\.0\.0\.1:\d+ "[^"]*" \d+ \d+ \d+$')

META = b"get_metadata hello.txt\r\n"
META_ANSWER = b"0 OK\r\n13\r\n"


def pipelined(port, line, answer, count):
    """count copies of line on one connection; reads every answer."""
    want = len(answer) * count
    with connect(port) as s:
        s.sendall(line * count + b"quit\r\n")
        got = b""
        while len(got) < want:
            data = s.recv(65536)
            if not data:
                break
            got += data
    assert got[:want] == answer * count, got[-200:]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs, unmounted at teardown; skips if mount is refused."""
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                        "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_access_log_on_a_full_file_system_has_only_whole_lines(small_tmpfs,
                                                               daemon):
    access = small_tmpfs / "access.log"
    d = daemon(workers=1, access_log=access)
    d.start()
    # ~70 bytes a line: 64 KiB of file, then 64 KiB of the worker's buffer,
    # then lines are dropped
    for _ in range(6):
        pipelined(d.port, META, META_ANSWER, 500)
    assert d.wait_log(r"warn worker.*access_log %s: " % re.escape(str(access)))
    master = d.master
    assert d.ctl("quit").returncode == 0
    assert wait_for(lambda: not os.path.exists("/proc/%d" % master),
                    10 * SCALE)
    text = access.read_bytes().decode()
    assert text.endswith("\n"), repr(text[-200:])
    lines = text.splitlines()
    assert len(lines) > 500, len(lines)
    for line in lines:
        assert ACCESS_LINE.match(line), line
    # warned once, when the episode began
    assert len(re.findall(r"lines wait in memory", d.log())) == 1, d.log()
    lost = d.wait_log(r"access_log %s: (\d+) lines were lost"
                      % re.escape(str(access)))
    assert lost and int(lost[0]) > 0, d.log()[-2000:]
    # every line is either in the file or counted lost (each quit has one)
    assert len(lines) + int(lost[0]) == 3000 + 6, (len(lines), lost)
