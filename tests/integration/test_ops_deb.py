"""The Debian packages, end to end, as an operator meets them.

dpkg-buildpackage twice on copies of the tree (the files git tracks or
would add, as they are in the working tree): the version as it is, and again with a bumped version;
git status is the same after each build as before (.gitignore covers every
output).  lintian clean.  Then the life of an installation: dpkg -i (nothing started,
nothing enabled), the split between hftpd and python3-hftp (dpkg -L, the
server without python3), the log folder owned by the service user, the
installed daemon serving with the man page's access_log and the installed
client fetching as root, the units checked by systemd-analyze; the operator
enables the service; the upgrade tries the in-place upgrade (SIGUSR2), then
restarts it (never stops it first) and
keeps it enabled; dpkg -r stops it; dpkg --purge leaves nothing: no file
or folder of either package, no state of deb-systemd-helper, no
.wants link, no user, no bytecode.

systemd is not PID 1 here.  Enablement is checked the way the maintainer
scripts record it (deb-systemd-helper's state, the .wants links); the start
and stop requests the scripts make are recorded by running dpkg in a mount
namespace where /run/systemd/system exists, `systemctl` is a script that
writes down its arguments and a policy-rc.d (containers have one that
forbids every start) allows all.  Every dpkg call also runs with a folder of
the test mounted on /var/log, so /var/log/hftpd of this machine (other
test suites' daemons fall back to it) is never touched.

Slow (one to three minutes: two package builds); skipped without dpkg-buildpackage, debhelper,
dh-python, unshare or root, when an hftpd package is already installed,
and under valgrind/ASan (it builds its own binary).  It leaves the system
as it found it: both packages are purged at the end, pass or fail.
"""

import datetime
import email.utils
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
    pytest.mark.skipif(any(shutil.which(t) is None for t in
                           ("dpkg-buildpackage", "dh", "dh_python3",
                            "unshare")),
                       reason="dpkg-dev, debhelper, dh-python and "
                              "util-linux needed"),
]

MAX_EXPOSURE = 2.0
PACKAGES = ("hftpd", "python3-hftp")
DSH = Path("/var/lib/systemd/deb-systemd-helper-enabled")
UNITS = ("hftpd.service", "hftpd.socket")
POLICY = "/usr/sbin/policy-rc.d"


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


def known(pkg):
    """Installed, or removed with its conffiles left."""
    r = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], check=False)
    return r.returncode == 0 and r.stdout not in ("", "not-installed")


def copy_tree(dest):
    """The files git knows or would add (tracked, and untracked but not
    ignored), as they are in the working tree."""
    files = run(["git", "-C", str(REPO), "ls-files", "-z", "--cached",
                 "--others", "--exclude-standard"]).stdout
    dest.mkdir(parents=True)
    for name in files.split("\0"):
        if not name:
            continue
        src = REPO / name
        if not src.exists():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)


def build(where, version=None):
    src = where / "hftpd-src"
    copy_tree(src)
    if version is not None:
        log = src / "debian" / "changelog"
        # dated an hour after the newest entry: lintian wants a newer date
        newest = next(ln for ln in log.read_text().splitlines() if ln.startswith(" -- "))
        when = email.utils.parsedate_to_datetime(newest.split("  ", 1)[1])
        log.write_text("hftpd (%s) unstable; urgency=medium\n\n"
                       "  * Test upgrade.\n\n"
                       " -- hftpd authors <hftpd@example.org>  %s\n\n"
                       % (version, email.utils.format_datetime(when + datetime.timedelta(hours=1)))
                       + log.read_text())
    # .gitignore covers every build output: git sees the same tree after
    run(["git", "init", "-q", str(src)])
    run(["git", "-C", str(src), "add", "-A"])
    status = run(["git", "-C", str(src), "status", "--porcelain"]).stdout
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2")
    r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, timeout=900,
            env=env)
    assert run(["git", "-C", str(src), "status", "--porcelain"]).stdout \
        == status
    debs = {p: sorted(where.glob("%s_*.deb" % p)) for p in PACKAGES}
    assert all(len(d) == 1 for d in debs.values()), r.stdout[-2000:]
    changes = sorted(where.glob("hftpd_*.changes"))
    return {p: d[0] for p, d in debs.items()}, changes[0]


def changelog_version():
    first = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    return re.match(r"hftpd \(([^)]+)\)", first).group(1)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    for p in PACKAGES:
        if installed(p):
            pytest.skip("a %s package is already installed" % p)
    base = tmp_path_factory.mktemp("deb")
    v1 = changelog_version()
    v2 = v1 + "+upgrade1"
    return {"v1": v1, "v2": v2, "first": build(base / "v1"),
            "second": build(base / "v2", v2)}


class Host:
    """dpkg and the installed daemon run through here: a private mount
    namespace with the test's folder on /var/log and, when `systemd` is
    set, a /run/systemd/system and a systemctl that records its calls."""

    def __init__(self, tmp):
        if not os.path.isdir("/run/systemd"):
            pytest.skip("no /run/systemd to mount a fake systemd over")
        self.varlog = tmp / "varlog"
        self.varlog.mkdir()
        self.bin = tmp / "fakebin"
        self.bin.mkdir()
        self.calls = tmp / "systemctl.calls"
        fake = self.bin / "systemctl"
        fake.write_text('#!/bin/sh\necho "$*" >> %s\n' % self.calls)
        fake.chmod(0o755)
        self.allow = tmp / "policy-rc.d"
        self.allow.write_text("#!/bin/sh\nexit 0\n")
        self.allow.chmod(0o755)

    def argv(self, argv, systemd):
        mounts = "mount --bind %s /var/log" % self.varlog
        if systemd:
            mounts += (" && mount -t tmpfs tmpfs /run/systemd"
                       " && mkdir /run/systemd/system")
            if os.path.exists(POLICY):     # a container's "start nothing"
                mounts += " && mount --bind %s %s" % (self.allow, POLICY)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                mounts + ' && exec "$@"', "sh"] + list(argv)

    def env(self, systemd):
        # as an operator's shell runs them: Python writes bytecode
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
        if systemd:
            env["PATH"] = "%s:%s" % (self.bin, env.get("PATH", "/usr/bin"))
        return env

    def run(self, argv, systemd=False, check=True):
        return run(self.argv(argv, systemd), env=self.env(systemd),
                   check=check)

    def dpkg(self, *args, check=True):
        """dpkg with systemd faked; the systemctl calls it made."""
        self.calls.write_text("")
        r = self.run(["dpkg"] + list(args), systemd=True, check=check)
        return r, self.calls.read_text().splitlines()

    def popen(self, argv, **kw):
        return subprocess.Popen(self.argv(argv, False), env=self.env(False),
                                **kw)


def enabled_links():
    return sorted(str(p) for p in Path("/etc/systemd/system").glob(
        "*.wants/hftpd.*"))


def dsh_state():
    return sorted(p.name for p in DSH.glob("hftpd.*")) if DSH.is_dir() else []


def was_enabled(unit):
    env = dict(os.environ, DPKG_MAINTSCRIPT_PACKAGE="hftpd")
    return run(["deb-systemd-helper", "--quiet", "was-enabled", unit],
               check=False, env=env).returncode == 0


def deb_paths(deb):
    """Every path the package ships, as dpkg -L names them."""
    out = run(["dpkg-deb", "-c", str(deb)]).stdout
    paths = []
    for line in out.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0]
        name = "/" + name.lstrip("./").rstrip("/")
        if name != "/":
            paths.append(name)
    return paths


def test_lintian_clean(builds):
    if shutil.which("lintian") is None:
        pytest.skip("lintian missing")
    for _, changes in (builds["first"], builds["second"]):
        lint = run(["lintian", "--tag-display-limit", "0", "-I", "--pedantic",
                    str(changes)], check=False, timeout=600)
        tags = [ln for ln in lint.stdout.splitlines()
                if re.match(r"[EWIPX]: ", ln)]
        assert tags == [], lint.stdout


def test_install_upgrade_remove_purge(builds, tmp_path):
    first, _ = builds["first"]
    second, _ = builds["second"]
    host = Host(tmp_path)
    shipped = set()
    for deb in list(first.values()) + list(second.values()):
        shipped.update(deb_paths(deb))
    shipped.update(["/srv/hftp", "/etc/hftpd/hftpd.conf"])
    existed = {p for p in shipped if os.path.lexists(p)}
    users = {p.pw_name for p in pwd.getpwall()}
    groups = {g.gr_name for g in grp.getgrall()}
    assert "hftpd" not in users
    links, state = enabled_links(), dsh_state()
    try:
        fresh_install(host, first)
        split_and_depends()
        units_not_enabled()
        log_folder_and_serve(host, tmp_path)
        check_units()
        # the operator enables the service (systemctl works on the files)
        run(["systemctl", "enable", "hftpd.service"])
        assert enabled_links() == [
            "/etc/systemd/system/multi-user.target.wants/hftpd.service"]
        upgrade(host, second, builds["v2"])
        r, calls = host.dpkg("-r", *PACKAGES)
        assert not re.search(r"warning|not empty", r.stdout + r.stderr,
                             re.I), r.stdout + r.stderr
        assert any(re.search(r"\bstop\b.*hftpd\.socket.*hftpd\.service", c)
                   for c in calls), calls
        assert not os.path.exists("/usr/sbin/hftpd")
    finally:
        for f in ("/srv/hftp/hello.txt",):
            if os.path.exists(f):
                os.unlink(f)
        purge, _ = host.dpkg("--purge", *[p for p in PACKAGES if known(p)],
                             check=False)
    out = purge.stdout + purge.stderr
    assert purge.returncode == 0, out
    assert not re.search(r"warning|not empty|error", out, re.I), out
    for p in PACKAGES:
        assert not installed(p), p
    left = sorted(p for p in shipped - existed if os.path.lexists(p))
    assert left == [], left
    assert not (host.varlog / "hftpd").exists()
    assert enabled_links() == links and dsh_state() == state
    assert {p.pw_name for p in pwd.getpwall()} == users
    assert {g.gr_name for g in grp.getgrall()} == groups


def fresh_install(host, debs):
    r, calls = host.dpkg("-i", str(debs["hftpd"]), str(debs["python3-hftp"]))
    # nothing is started on a fresh install, whatever the unit's state
    assert not [c for c in calls if re.search(r"start|enable", c)], calls
    pwd.getpwnam("hftpd")
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "hftpd"]).stdout
    assert "/etc/hftpd/hftpd.conf" in conffiles
    v = run(["/usr/sbin/hftpd", "-V"]).stdout
    assert "config file: /etc/hftpd/hftpd.conf" in v
    run(["/usr/sbin/hftpd", "-t"])       # the installed config, found


def split_and_depends():
    server = set(run(["dpkg", "-L", "hftpd"]).stdout.split())
    client = set(run(["dpkg", "-L", "python3-hftp"]).stdout.split())
    for f in ("/usr/sbin/hftpd", "/etc/hftpd/hftpd.conf",
              "/lib/systemd/system/hftpd.service",
              "/lib/systemd/system/hftpd.socket", "/etc/logrotate.d/hftpd",
              "/var/log/hftpd", "/usr/share/man/man8/hftpd.8.gz",
              "/usr/share/man/man5/hftpd.conf.5.gz"):
        assert f in server, f
    for f in ("/usr/bin/hftp", "/usr/share/man/man1/hftp.1.gz",
              "/usr/lib/python3/dist-packages/hftp/cli.py",
              "/usr/lib/python3/dist-packages/hftp/py.typed"):
        assert f in client, f
    assert not [f for f in server if "python" in f or "hftp." in f
                or f.endswith("/hftp")], server
    depends = run(["dpkg-query", "-W", "-f=${Depends}", "hftpd"]).stdout
    assert "python" not in depends, depends
    depends = run(["dpkg-query", "-W", "-f=${Depends}",
                   "python3-hftp"]).stdout
    assert "python3" in depends, depends


def units_not_enabled():
    """As the README says: installed, neither enabled nor started."""
    assert enabled_links() == []
    assert dsh_state() == ["hftpd.service.dsh-also", "hftpd.socket.dsh-also"]
    for unit in UNITS:
        assert not was_enabled(unit), unit
        r = run(["systemctl", "is-enabled", unit], check=False)
        assert r.stdout.strip() == "disabled", r.stdout + r.stderr


def log_folder_and_serve(host, tmp_path):
    """/var/log/hftpd is the service user's; the installed daemon, started
    as root without systemd with the man page's access_log, logs there; the
    installed client, run as root, fetches."""
    st = os.stat(host.varlog / "hftpd")
    hftpd = pwd.getpwnam("hftpd")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
        (hftpd.pw_uid, hftpd.pw_gid, 0o750)
    conf = tmp_path / "hftpd.conf"
    conf.write_text(Path("/etc/hftpd/hftpd.conf").read_text()
                    + "access_log = /var/log/hftpd/access.log\n")
    Path("/srv/hftp/hello.txt").write_bytes(b"hello from the package\n")
    port = free_port()
    p = host.popen(["/usr/sbin/hftpd", "-f", "-c", str(conf), "-a",
                    "127.0.0.1", "-p", str(port), "-w", "1"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: p.poll() is None and _listening(port)
                        and request(port, b"help\r\n"), 10), \
            p.poll() is None or p.stdout.read()
        out = tmp_path / "fetched"
        r = host.run(["/usr/bin/hftp", "127.0.0.1:%d" % port, "get",
                      "hello.txt", "-o", str(out), "-q"])
        assert out.read_bytes() == b"hello from the package\n", r.stderr
        # workers run as the package's user, as the config says
        ws = [int(x) for x in open("/proc/%d/task/%d/children"
                                   % (p.pid, p.pid)).read().split()]
        assert ws
        for w in ws:
            status = open("/proc/%d/status" % w).read()
            assert re.search(r"^Uid:\s+%d\s" % hftpd.pw_uid, status,
                             re.M), status
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    access = host.varlog / "hftpd" / "access.log"
    assert re.search(r'"get_slice hello\.txt ', access.read_text()), \
        access.read_text()
    assert os.stat(access).st_uid == hftpd.pw_uid


def _listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def upgrade(host, debs, version):
    """A running service is restarted after the new files are in place and
    never stopped before; an enabled one stays enabled, and only it."""
    _, calls = host.dpkg("-i", str(debs["hftpd"]), str(debs["python3-hftp"]))
    # the postinst first tries the upgrade in place (SIGUSR2, then the main
    # pid); the fake systemctl names no main pid, so it falls back
    assert "show -p MainPID --value hftpd.service" in calls, calls
    assert not [c for c in calls if c.startswith("kill")], calls
    assert "try-restart hftpd.service" in calls, calls
    assert not [c for c in calls if re.search(r"(^|\s)(stop|start)\s", c)], \
        calls
    v = run(["dpkg-query", "-W", "-f=${Version}", "hftpd"]).stdout
    assert v == version
    assert enabled_links() == [
        "/etc/systemd/system/multi-user.target.wants/hftpd.service"]
    assert was_enabled("hftpd.service")
    assert not was_enabled("hftpd.socket")


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
