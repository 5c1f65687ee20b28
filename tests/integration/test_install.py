"""make install and uninstall: every file where PREFIX, DESTDIR and friends
say, the paths compiled into the binary following the prefix, the config
and units filled in; the man pages lint-clean; the logrotate file rotates
and the daemon reopens (the old file is no longer written).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ASAN, HFTPD_BIN, REPO, SCALE, VALGRIND, request, wait_for

# The build of its own is what these test, not the binary under test.
pytestmark = pytest.mark.skipif(VALGRIND or ASAN,
                                reason="builds and installs its own hftpd")

PREFIX = "/opt/hftpd-test"
EXPECTED = sorted([
    "opt/hftpd-test/sbin/hftpd",
    "opt/hftpd-test/share/man/man8/hftpd.8",
    "opt/hftpd-test/share/man/man5/hftpd.conf.5",
    "opt/hftpd-test/share/man/man1/hftp.1",
    "opt/hftpd-test/etc/hftpd/hftpd.conf",
    "opt/hftpd-test/etc/logrotate.d/hftpd",
    "opt/hftpd-test/lib/systemd/system/hftpd.service",
    "opt/hftpd-test/lib/systemd/system/hftpd.socket",
    "opt/hftpd-test/share/doc/hftpd/LICENSE",
    "opt/hftpd-test/share/doc/hftpd/README.md",
])


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def make(*args, timeout=300):
    r = subprocess.run(["make", "-s", "-C", str(REPO)] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_make_install_and_uninstall(tmp_path):
    dest = tmp_path / "dest"
    build = tmp_path / "build"
    make("-j2", "install", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX,
         "BUILD=%s" % build)
    assert files_under(dest) == EXPECTED
    hftpd = dest / PREFIX.lstrip("/") / "sbin" / "hftpd"
    assert os.stat(hftpd).st_mode & 0o777 == 0o755
    v = subprocess.run([str(hftpd), "-V"], capture_output=True, text=True)
    assert "config file: %s/etc/hftpd/hftpd.conf" % PREFIX in v.stdout, v.stdout
    conf = (dest / PREFIX.lstrip("/") / "etc/hftpd/hftpd.conf").read_text()
    assert re.search(r"^directory = /srv/hftp$", conf, re.M)
    unit = (dest / PREFIX.lstrip("/") / "lib/systemd/system/hftpd.service"
            ).read_text()
    assert "ExecStart=%s/sbin/hftpd -f -c %s/etc/hftpd/hftpd.conf" % (
        PREFIX, PREFIX) in unit
    assert not re.search(r"@[A-Z]+@", unit)
    rot = (dest / PREFIX.lstrip("/") / "etc/logrotate.d/hftpd").read_text()
    assert "%s/sbin/hftpd -s reopen" % PREFIX in rot
    assert not re.search(r"@[A-Z]+@", rot)
    # a second install keeps an edited config and puts the new one beside it
    make("install", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX,
         "BUILD=%s" % build)
    assert (dest / PREFIX.lstrip("/") / "etc/hftpd/hftpd.conf.new").exists()
    make("uninstall", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX,
         "BUILD=%s" % build)
    assert files_under(dest) == [
        "opt/hftpd-test/etc/hftpd/hftpd.conf"]


@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc missing")
def test_man_pages_lint_clean():
    pages = sorted(str(p) for p in (REPO / "docs" / "man").iterdir())
    assert len(pages) == 3
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"] + pages,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("logrotate") is None,
                    reason="logrotate missing")
def test_logrotate_file_rotates_and_reopens(daemon, tmp_path):
    """The shipped logrotate file (its paths pointed at the test's logs,
    its `hftpd -s reopen` at this binary and config) rotates both logs; the
    daemon then writes the new files and never the old ones again."""
    d = daemon(workers=1)
    logdir = d.root / "log"
    logdir.mkdir()
    d.error_log = logdir / "error.log"
    d.access_log = logdir / "access.log"
    d.write_config(error_log=d.error_log, access_log=d.access_log)
    d.start()
    assert request(d.port, b"get_metadata hello.txt\r\n").startswith(b"0 OK")
    assert d.wait_log(r"get_metadata hello.txt", path=d.access_log)
    text = (REPO / "conf" / "hftpd.logrotate.in").read_text()
    text = text.replace("@LOCALSTATEDIR@/log/hftpd", str(logdir))
    text = text.replace("@SBINDIR@/hftpd", "%s -c %s" % (HFTPD_BIN, d.conf))
    # systemd is not running here: the pid file branch is the one taken
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text)
    os.chmod(conf, 0o644)
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"),
                        str(conf)], capture_output=True, text=True,
                       timeout=30 * SCALE)
    assert r.returncode == 0, r.stdout + r.stderr
    rotated = logdir / "access.log.1"
    assert rotated.exists() and (logdir / "error.log.1").exists()
    assert wait_for(d.access_log.exists, 5 * SCALE), os.listdir(logdir)
    assert d.wait_log(r"reopening log files", path=logdir / "error.log.1")
    old = rotated.read_bytes()
    for _ in range(3):
        assert request(d.port, b"get_metadata hello.txt\r\n").startswith(b"0 OK")
    assert d.wait_log(r"get_metadata hello.txt", path=d.access_log, count=3)
    assert rotated.read_bytes() == old
