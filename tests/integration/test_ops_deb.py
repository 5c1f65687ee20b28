"""The Debian package, end to end: dpkg-buildpackage on a copy of the tree
(git's files, as a clean clone has them), lintian without errors, dpkg -i,
hftpd -t on the installed config, the installed binary serving a file the
installed client fetches, the units checked by systemd-analyze (systemd is
not PID 1 here), then dpkg --purge leaving nothing behind.

Slow (about a minute); skipped without dpkg-buildpackage, debhelper or
root, when an hftpd package is already installed, and under valgrind/ASan
(it builds its own binary).
"""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import ASAN, REPO, VALGRIND, free_port, request, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(VALGRIND or ASAN, reason="builds its own hftpd"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root"),
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None or
                       shutil.which("dh") is None,
                       reason="dpkg-dev and debhelper needed"),
]

MAX_EXPOSURE = 2.0


def run(argv, timeout=300, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       **kw)
    if check:
        assert r.returncode == 0, "%s: %s%s" % (argv, r.stdout, r.stderr)
    return r


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return r.returncode == 0 and "installed" in r.stdout \
        and "not-installed" not in r.stdout


def copy_tree(dest):
    """The files git knows, as they are in the working tree."""
    files = run(["git", "-C", str(REPO), "ls-files", "-z"]).stdout
    dest.mkdir()
    for name in files.split("\0"):
        if not name:
            continue
        src = REPO / name
        if not src.exists():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)


@pytest.fixture
def deb(tmp_path):
    if installed("hftpd"):
        pytest.skip("an hftpd package is already installed")
    src = tmp_path / "hftpd-src"
    copy_tree(src)
    r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, timeout=600)
    debs = sorted(tmp_path.glob("hftpd_*_*.deb"))
    assert len(debs) == 1, r.stdout[-2000:]
    return debs[0]


def test_deb_build_lintian_install_serve_purge(deb, tmp_path):
    if shutil.which("lintian"):
        lint = run(["lintian", "--tag-display-limit", "0", str(deb)],
                   check=False, timeout=300)
        errors = [ln for ln in lint.stdout.splitlines() if ln.startswith("E:")]
        assert errors == [], lint.stdout
    before_users = {p.pw_name for p in pwd.getpwall()}
    try:
        run(["dpkg", "-i", str(deb)])
        files = run(["dpkg", "-L", "hftpd"]).stdout.split()
        for f in ("/usr/sbin/hftpd", "/etc/hftpd/hftpd.conf",
                  "/lib/systemd/system/hftpd.service",
                  "/lib/systemd/system/hftpd.socket",
                  "/etc/logrotate.d/hftpd", "/usr/bin/hftp",
                  "/usr/share/man/man8/hftpd.8.gz",
                  "/usr/share/man/man5/hftpd.conf.5.gz",
                  "/usr/share/man/man1/hftp.1.gz"):
            assert f in files, f
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "hftpd"]).stdout
        assert "/etc/hftpd/hftpd.conf" in conffiles
        pwd.getpwnam("hftpd")
        v = run(["/usr/sbin/hftpd", "-V"]).stdout
        assert "config file: /etc/hftpd/hftpd.conf" in v
        run(["/usr/sbin/hftpd", "-t"])       # the installed config, found
        serve_and_fetch(tmp_path)
        check_units()
    finally:
        if os.path.exists("/srv/hftp/hello.txt"):
            os.unlink("/srv/hftp/hello.txt")
        purge = run(["dpkg", "--purge", "hftpd"], check=False)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert not installed("hftpd")
    for path in ("/usr/sbin/hftpd", "/etc/hftpd", "/usr/bin/hftp",
                 "/lib/systemd/system/hftpd.service", "/etc/logrotate.d/hftpd",
                 "/var/log/hftpd", "/srv/hftp",
                 "/usr/lib/python3/dist-packages/hftp",
                 "/etc/systemd/system/multi-user.target.wants/hftpd.service"):
        assert not os.path.lexists(path), path
    assert {p.pw_name for p in pwd.getpwall()} == before_users - {"hftpd"}
    assert "hftpd" not in {g.gr_name for g in grp.getgrall()}


def serve_and_fetch(tmp_path):
    """The installed daemon, the installed config (port and address moved
    to a free loopback one), a file fetched by the installed client."""
    Path("/srv/hftp/hello.txt").write_bytes(b"hello from the package\n")
    port = free_port()
    p = subprocess.Popen(["/usr/sbin/hftpd", "-f", "-a", "127.0.0.1",
                          "-p", str(port), "-w", "1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: request(port, b"help\r\n")
                        if p.poll() is None and _listening(port) else None,
                        10), p.poll()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = tmp_path / "fetched"
        r = run(["/usr/bin/hftp", "127.0.0.1:%d" % port, "get", "hello.txt",
                 "-o", str(out), "-q"], env=env, cwd="/")
        assert out.read_bytes() == b"hello from the package\n", r.stderr
        # workers run as the package's user, as the config says
        ws = [int(x) for x in open("/proc/%d/task/%d/children"
                                   % (p.pid, p.pid)).read().split()]
        uid = pwd.getpwnam("hftpd").pw_uid
        for w in ws:
            status = open("/proc/%d/status" % w).read()
            assert re.search(r"^Uid:\s+%d\s" % uid, status, re.M), status
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def _listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def check_units():
    if shutil.which("systemd-analyze") is None:
        return
    units = ["/lib/systemd/system/hftpd.service",
             "/lib/systemd/system/hftpd.socket"]
    v = run(["systemd-analyze", "verify"] + units, check=False)
    assert v.returncode == 0 and v.stdout + v.stderr == "", v.stdout + v.stderr
    s = run(["systemd-analyze", "security", "--offline=true", units[0]],
            check=False)
    m = re.search(r"Overall exposure level for hftpd.service: ([\d.]+)",
                  s.stdout)
    assert m and float(m.group(1)) <= MAX_EXPOSURE, s.stdout
