"""make install and uninstall: every file where PREFIX, DESTDIR and friends
say, the paths compiled into the binary following the prefix, the config
and units filled in; for PREFIX=/usr/local the logrotate file under /etc
and the sysusers.d and tmpfiles.d files where systemd finds them; the
installed client running, and gone with its bytecode after uninstall; the
man pages lint-clean; the logrotate file rotates
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
CLIENT_FILES = ["__init__.py", "__main__.py", "cli.py", "client.py",
                "errors.py", "mirror.py", "progress.py", "py.typed",
                "transfer.py"]


def layout(prefix):
    p = prefix.lstrip("/")
    return sorted([
        p + "/sbin/hftpd",
        p + "/bin/hftp",
        p + "/share/man/man8/hftpd.8",
        p + "/share/man/man5/hftpd.conf.5",
        p + "/share/man/man1/hftp.1",
        p + "/etc/hftpd/hftpd.conf",
        "etc/logrotate.d/hftpd",          # the one folder logrotate reads
        p + "/lib/systemd/system/hftpd.service",
        p + "/lib/systemd/system/hftpd.socket",
        p + "/lib/sysusers.d/hftpd.conf",
        p + "/lib/tmpfiles.d/hftpd.conf",
        p + "/share/doc/hftpd/LICENSE",
        p + "/share/doc/hftpd/README.md",
    ] + [p + "/lib/hftp/hftp/" + f for f in CLIENT_FILES])


EXPECTED = layout(PREFIX)


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
    assert re.search(r"^user = hftpd$", conf, re.M)
    unit = (dest / PREFIX.lstrip("/") / "lib/systemd/system/hftpd.service"
            ).read_text()
    assert "ExecStart=%s/sbin/hftpd -f -c %s/etc/hftpd/hftpd.conf" % (
        PREFIX, PREFIX) in unit
    assert not re.search(r"@[A-Z]+@", unit)
    rot = (dest / "etc/logrotate.d/hftpd").read_text()
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


def test_make_install_usr_local_declares_user_and_folders(tmp_path):
    """PREFIX=/usr/local: logrotate's file under /etc, and sysusers.d and
    tmpfiles.d files where systemd reads them (systemd-sysusers and
    systemd-tmpfiles, pointed at DESTDIR with no file named, find them
    there and make the unit's user, /srv/hftp and the log folder)."""
    dest = tmp_path / "dest"
    make("-j2", "install", "DESTDIR=%s" % dest, "PREFIX=/usr/local",
         "BUILD=%s" % (tmp_path / "build"))
    assert files_under(dest) == layout("/usr/local")
    rot = (dest / "etc/logrotate.d/hftpd").read_text()
    assert rot.startswith("# ") and "\n/var/log/hftpd/*.log {" in rot
    assert "/usr/local/sbin/hftpd -s reopen" in rot
    if os.path.exists("/etc/logrotate.conf"):
        assert re.search(r"^include /etc/logrotate\.d$",
                         Path("/etc/logrotate.conf").read_text(), re.M)
    unit = (dest / "usr/local/lib/systemd/system/hftpd.service").read_text()
    assert re.search(r"^User=hftpd$", unit, re.M)
    # Applying them chowns files to the new user: root only.
    if os.geteuid() == 0 and shutil.which("systemd-sysusers") and \
            shutil.which("systemd-tmpfiles"):
        for argv in (["systemd-sysusers", "--root=%s" % dest],
                     ["systemd-tmpfiles", "--root=%s" % dest, "--create"]):
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
        user = [ln.split(":") for ln in (dest / "etc/passwd").read_text()
                .splitlines() if ln.startswith("hftpd:")]
        assert len(user) == 1, (dest / "etc/passwd").read_text()
        uid, gid, shell = int(user[0][2]), int(user[0][3]), user[0][6]
        assert uid < 1000 and shell.endswith("nologin"), user
        st = os.stat(dest / "srv/hftp")
        assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755)
        st = os.stat(dest / "var/log/hftpd")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
            (uid, gid, 0o750)
    make("uninstall", "DESTDIR=%s" % dest, "PREFIX=/usr/local",
         "BUILD=%s" % (tmp_path / "build"))
    left = [f for f in files_under(dest) if not re.match(
        r"etc/(passwd|group|shadow|gshadow|\.pwd\.lock)$", f)]
    assert left == ["usr/local/etc/hftpd/hftpd.conf"]


def test_make_install_client_serves_and_uninstalls_clean(server, tmp_path):
    """The installed hftp command imports the client make install put in
    PREFIX/lib/hftp (not one on PYTHONPATH); the bytecode Python writes
    beside it goes with make uninstall."""
    prefix = tmp_path / "prefix"
    paths = ["PREFIX=%s" % prefix, "LOGROTATEDIR=%s/etc/logrotate.d" % prefix,
             "BUILD=%s" % (tmp_path / "build")]
    make("install-client", *paths)
    # as an operator's shell runs it: Python writes bytecode
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    r = subprocess.run([str(prefix / "bin/hftp"), "%s:%d" % (server.host,
                        server.port), "ls"], capture_output=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"archivo.txt\nempty\nten.txt\n"),\
        r.stderr
    r = subprocess.run([str(prefix / "bin/hftp"), "--version"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("hftp "), r.stderr
    assert (prefix / "lib/hftp/hftp/__pycache__").is_dir()
    assert (prefix / "share/man/man1/hftp.1").exists()
    make("uninstall", *paths)
    assert files_under(prefix) == []
    assert not (prefix / "lib/hftp").exists()


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


def test_versions_agree():
    """hftpd -V, the client's __version__ and the Debian changelog name one
    version (python3-hftp's Breaks/Replaces on hftpd count on it)."""
    v = subprocess.run([HFTPD_BIN, "-V"], capture_output=True, text=True)
    daemon = re.match(r"hftpd (\S+)\n", v.stdout).group(1)
    init = (REPO / "client" / "hftp" / "__init__.py").read_text()
    client = re.search(r'^__version__ = "([^"]+)"$', init, re.M).group(1)
    log = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    deb = re.match(r"hftpd \(([^)]+)\) ", log).group(1)
    assert daemon == client == deb, (daemon, client, deb)
    # the first version without the client is at most this one
    control = (REPO / "debian" / "control").read_text()
    split = re.search(r"^Breaks: hftpd \(<< (\S+)~\)$", control, re.M).group(1)
    assert re.search(r"^Replaces: hftpd \(<< %s~\)$" % re.escape(split),
                     control, re.M), control
    if shutil.which("dpkg"):
        assert subprocess.run(["dpkg", "--compare-versions", split, "le",
                               deb]).returncode == 0, (split, deb)
