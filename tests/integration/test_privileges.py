"""Workers drop root by default: started as root without `user`, they run
as nobody:nogroup and the log says so; `user = root` keeps root only when
written, with a warning; a served directory the workers' user cannot reach
fails -t and start-up with a message naming the directory, the user and the
setting; `chroot = yes` confines workers to the served directory.

Every test needs root (the suite's usual case); they skip otherwise.  The
harness runs its servers as the suite's user; these tests ask for the drop
(user=None, or a `user`) and keep what the workers must reach in a folder
of their own outside the clone (privileged_dir), which may lie in a
private one.
"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import HFTPD_BIN, make_tree, request

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

HELLO = b"hello, world\n"


def ids_of(pid):
    status = open("/proc/%d/status" % pid).read()
    uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
    gid = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
    return ({int(x) for x in uid.groups()}, {int(x) for x in gid.groups()})


def metadata(port, name):
    return request(port, b"get_metadata %s\r\n" % name.encode())


@pytest.fixture
def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")


def test_root_without_user_drops_to_nobody(daemon, nobody, privileged_dir):
    d = daemon(workers=2, user=None, base=privileged_dir)
    d.start()
    ws = d.wait_workers(2)
    assert len(ws) == 2
    want_gid = grp.getgrnam("nogroup").gr_gid
    for w in ws:
        assert ids_of(w) == ({nobody.pw_uid}, {want_gid})
    assert ids_of(d.master)[0] == {0}
    assert d.wait_log(r"started as root without `user`: workers run as "
                      r"nobody:nogroup")
    assert metadata(d.port, "hello.txt") == b"0 OK\r\n13\r\n0 OK\r\n"


def test_root_only_file_is_not_served(daemon, privileged_dir):
    """A 0600 root file is 199 now that workers are not root (no setpriv)."""
    d = daemon(workers=1, files={"secret": b"s3cr3t", "ok": b"fine"},
               user=None, base=privileged_dir)
    os.chmod(d.directory / "secret", 0o600)
    d.start()
    out = request(d.port, b"get_slice secret 0 6\r\n")
    assert out.startswith(b"199 "), out
    assert request(d.port, b"get_slice ok 0 4 raw\r\n").startswith(
        b"0 OK\r\nContent-Length: 4\r\n\r\nfine")


def test_user_root_keeps_root_with_a_warning(daemon):
    d = daemon(workers=1, user="root")
    d.start()
    ws = d.wait_workers(1)
    assert ids_of(ws[0])[0] == {0}
    assert d.wait_log(r"warn .*user = root: workers keep every privilege")


@pytest.fixture
def private_dir():
    """A served directory under a 0700 folder (think /root/files)."""
    top = tempfile.mkdtemp(prefix="hftpd-private-")
    os.chmod(top, 0o700)
    make_tree(top + "/files", {"hello.txt": HELLO})
    yield top + "/files"
    shutil.rmtree(top, ignore_errors=True)


def test_unreachable_directory_fails_t_and_start(daemon, private_dir):
    d = daemon(workers=1, directory=private_dir, user=None)
    for r in (d.run("-t", "-c", str(d.conf)),
              d.run("-c", str(d.conf)),
              d.run("-f", "-c", str(d.conf))):
        assert r.returncode == 1, r.err
        assert private_dir in r.err and "nobody" in r.err, r.err
        assert "`user`" in r.err and "-u USER" in r.err, r.err
    assert d.read_pid() is None


def test_unreachable_directory_fails_reload(daemon, private_dir,
                                           privileged_dir):
    d = daemon(workers=1, user=None, base=privileged_dir)
    d.start()
    d.write_config(directory=private_dir)
    r = d.ctl("reload")
    assert r.returncode == 1 and private_dir in r.err and "nobody" in r.err


def test_user_who_can_read_it_is_accepted(daemon, private_dir):
    """The same folder is fine once `user` is root (its owner)."""
    d = daemon(workers=1, directory=private_dir, user="root")
    assert d.run("-t", "-c", str(d.conf)).returncode == 0


def test_chroot_needs_user(daemon):
    d = daemon(workers=1, chroot="yes", user=None)
    r = d.run("-t", "-c", str(d.conf))
    assert r.returncode == 1 and "chroot" in r.err and "user" in r.err, r.err
    d.write_config(chroot="maybe")
    r = d.run("-t", "-c", str(d.conf))
    assert r.returncode == 1 and re.search(r"hftpd.conf:\d+: chroot", r.err)


def test_chroot_confines_workers(daemon, nobody, privileged_dir):
    d = daemon(workers=1, user="nobody", chroot="yes",
               files={"hello.txt": HELLO, "sub": None}, base=privileged_dir)
    assert d.run("-t", "-c", str(d.conf)).returncode == 0
    d.start()
    ws = d.wait_workers(1)
    assert os.readlink("/proc/%d/root" % ws[0]) == str(d.directory)
    assert ids_of(ws[0])[0] == {nobody.pw_uid}
    assert metadata(d.port, "hello.txt") == b"0 OK\r\n13\r\n0 OK\r\n"
    listing = request(d.port, b"get_file_listing\r\n")
    assert listing == b"0 OK\r\nhello.txt\r\n\r\n0 OK\r\n", listing
    assert d.wait_log(r"chrooted to the served directory")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_chroot_refused_when_not_root(daemon, nobody, privileged_dir):
    """Not root, hftpd cannot chroot: -t says so (it must never serve / as
    if the chroot had happened)."""
    d = daemon(workers=1, user="nobody", chroot="yes", error_log="stderr",
               access_log="off", base=privileged_dir)
    lines = [ln for ln in d.conf.read_text().splitlines()
             if not ln.startswith("pid_file")]
    d.conf.write_text("\n".join(lines) + "\n")
    os.chmod(d.conf, 0o644)
    r = d.run("-t", "-f", "-c", str(d.conf))
    assert r.returncode == 0, r.err
    # unwrapped: valgrind, as nobody, could not write its log
    r = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid,
                        "--regid=%d" % nobody.pw_gid, "--clear-groups",
                        HFTPD_BIN, "-t", "-f", "-c", str(d.conf)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "chroot = yes needs hftpd started as root" \
        in r.stderr, r.stderr
