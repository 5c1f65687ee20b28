"""metadata_cache: the worker's inotify-kept cache of what each name is.

Exactness: a change made through the file system (write, append, truncate,
rename over, unlink, create) and followed at once by a request on a
kept-open connection is always seen, with the cache on and off; the served
directory removed and recreated, or renamed over, is seen by the next
request.  Cost: strace attached to the one worker counts its stat and open
calls over 10,000 pipelined get_metadata of an unchanged file."""

import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

import hftp

from conftest import ASAN, SCALE, VALGRIND, wait_for

MODES = ["inotify", "off"]
NAMES = ["a", "b", "c", "d", "e", "f"]


def start(hftpd, mode, files=None, workers=1):
    return hftpd(files=files if files is not None else {"a": b"first"},
                 workers=workers, config=["metadata_cache = %s" % mode])


def expect(c, directory, name, check_slice):
    """Asks for name's size (and a slice of it) and compares with the file
    system's; returns a description of a stale answer, or None."""
    path = directory / name
    try:
        want = path.read_bytes()
    except FileNotFoundError:
        want = None
    try:
        got = c.metadata(name)
    except hftp.HFTPError as e:
        got = e.code
    if want is None:
        if got != 202:
            return "%s: missing, answered %r" % (name, got)
        return None
    if got != len(want):
        return "%s: size %d, answered %r" % (name, len(want), got)
    if check_slice and want:
        n = min(len(want), 16)
        off = len(want) - n
        data = c.slice(name, off, n)
        if data != want[off:]:
            return "%s: slice %d+%d %r, answered %r" % (name, off, n,
                                                        want[off:], data)
    return None


def change(directory, rng, step):
    """One change through the file system; the name changed."""
    name = rng.choice(NAMES)
    path = directory / name
    kind = rng.choice(["write", "append", "truncate", "rename", "unlink",
                       "create"])
    body = (b"%d-" % step) * rng.randrange(0, 40)
    if kind == "write" or (kind in ("append", "truncate", "unlink")
                           and not path.exists()):
        with open(path, "wb") as f:
            f.write(body)
    elif kind == "append":
        with open(path, "ab") as f:
            f.write(body + b"+")
    elif kind == "truncate":
        os.truncate(path, rng.randrange(0, os.path.getsize(path) + 8))
    elif kind == "rename":
        tmp = directory.parent / ("tmp-%d" % step)
        tmp.write_bytes(body + b"r")
        os.replace(tmp, path)
    elif kind == "unlink":
        os.unlink(path)
    else:
        if path.exists():
            os.unlink(path)
        with open(path, "xb") as f:
            f.write(body + b"new")
    return name, kind


@pytest.mark.parametrize("mode", MODES)
def test_300_changes_never_answered_stale(hftpd, mode):
    srv = start(hftpd, mode, files={n: b"seed " + n.encode() for n in NAMES})
    rng = random.Random(17)
    stale = []
    with srv.client() as c:
        for n in NAMES:                         # every name cached first
            assert expect(c, srv.directory, n, False) is None
        for step in range(300):
            name, kind = change(srv.directory, rng, step)
            bad = expect(c, srv.directory, name, step % 3 == 0)
            if bad:
                stale.append("step %d (%s): %s" % (step, kind, bad))
            # an unchanged name stays right (answered from the cache)
            other = NAMES[step % len(NAMES)]
            bad = expect(c, srv.directory, other, False)
            if bad:
                stale.append("step %d (other): %s" % (step, bad))
    assert stale == [], "%d stale answers:\n%s" % (len(stale),
                                                   "\n".join(stale[:20]))


@pytest.mark.parametrize("mode", MODES)
def test_chmod_and_mode_changes_seen(hftpd, mode):
    """A file that becomes a directory's name, a symlink, or goes and comes
    back under the same name through a rename away and back."""
    srv = start(hftpd, mode, files={"x": b"12345", "y": b"1"})
    d = srv.directory
    with srv.client() as c:
        assert c.metadata("x") == 5
        os.rename(d / "x", d.parent / "x.away")
        with pytest.raises(hftp.HFTPError) as e:
            c.metadata("x")
        assert e.value.code == 202
        os.rename(d.parent / "x.away", d / "x")
        assert c.metadata("x") == 5
        os.unlink(d / "y")
        os.symlink("x", d / "y")                # a symlink is never served
        with pytest.raises(hftp.HFTPError) as e:
            c.metadata("y")
        assert e.value.code == 202
        os.unlink(d / "y")
        os.mkdir(d / "y")
        with pytest.raises(hftp.HFTPError) as e:
            c.metadata("y")
        assert e.value.code == 202
        os.rmdir(d / "y")
        (d / "y").write_bytes(b"back")
        assert c.metadata("y") == 4


@pytest.mark.parametrize("mode", MODES)
def test_directory_removed_and_recreated(hftpd, mode):
    srv = start(hftpd, mode, files={"f": b"old contents"})
    d = srv.directory
    with srv.client() as c:
        assert c.metadata("f") == 12
        shutil.rmtree(d)
        with pytest.raises(hftp.HFTPError) as e:
            c.metadata("f")
        assert e.value.code == 202
        d.mkdir()
        (d / "f").write_bytes(b"new")
        assert c.metadata("f") == 3
        assert c.slice("f", 0, 3) == b"new"
        # replaced by a rename: the old one moved away, a new one moved in
        new = d.parent / "next"
        new.mkdir()
        (new / "f").write_bytes(b"renamed in")
        os.rename(d, d.parent / "gone")
        os.rename(new, d)
        assert c.metadata("f") == 10
        assert c.listing() == ["f"]
        # the old directory, still existing elsewhere, no longer counts
        (d.parent / "gone" / "f").write_bytes(b"x")
        assert c.metadata("f") == 10
        (d / "f").write_bytes(b"1234")
        assert c.metadata("f") == 4


def syscall_counts(text):
    """strace -c's table: {name: calls}."""
    counts = {}
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$",
                     line)
        if m:
            counts[m.group(2)] = int(m.group(1))
    return counts


FS_CALLS = ("stat", "lstat", "fstat", "newfstatat", "fstatat64", "statx",
            "open", "openat", "openat2")


def count_fs_calls(srv, tmp_path, requests):
    """strace -f -c attached to the one worker while it answers requests
    pipelined get_metadata of one unchanged file: {call: count}."""
    (worker,) = srv.wait_workers(1)
    out = tmp_path / ("strace-%d.txt" % worker)
    st = subprocess.Popen(["strace", "-f", "-c", "-o", str(out),
                           "-e", "trace=" + ",".join(FS_CALLS), "-p",
                           str(worker)],
                          stderr=subprocess.PIPE, text=True)
    try:
        line = st.stderr.readline()         # "Process N attached" once it is
        if "attached" not in line:
            st.wait(10)
            pytest.skip("strace cannot attach (ptrace not permitted?): %s"
                        % line.strip())
        with srv.client(timeout=60 * SCALE) as c:
            assert c.metadata("same") == 6      # warm: the first may stat
            c.send_raw(b"get_metadata same\r\n" * requests)
            want = b"0 OK\r\n6\r\n" * requests
            got = c.read_exact(len(want))
            assert got == want
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(30)
    counts = syscall_counts(out.read_text())
    return {k: v for k, v in counts.items() if k in FS_CALLS}


@pytest.mark.slow
@pytest.mark.skipif(VALGRIND or ASAN, reason="counts the plain build's calls")
def test_strace_stat_and_open_calls_per_request(hftpd, tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (make deps installs it)")
    n = 10000
    figures = {}
    for mode in ("off", "inotify"):
        srv = start(hftpd, mode, files={"same": b"sixsix"})
        counts = count_fs_calls(srv, tmp_path, n)
        figures[mode] = (sum(counts.values()), counts)
        srv.stop()
    for mode, (total, counts) in figures.items():
        print("metadata_cache %s: %d stat/open calls over %d get_metadata "
              "(%.3f a request) %s" % (mode, total, n, total / n, counts))
    assert figures["off"][0] / n >= 0.9, "the count sees no calls: %r" % (
        figures,)
    assert figures["inotify"][0] / n <= 0.05, figures


def test_default_and_T_show_the_key(hftpd, tmp_path):
    from conftest import HFTPD_BIN, SUITE_USER
    # -f: the error log is stderr (the fallback file under /var/log needs root)
    out = subprocess.run([HFTPD_BIN, "-f", "-T", "-d", str(tmp_path), "-u", SUITE_USER],
                         capture_output=True, text=True, timeout=30)
    assert re.search(r"^metadata_cache\s*=\s*inotify\b", out.stdout, re.M), \
        out.stdout
    conf = tmp_path / "bad.conf"
    conf.write_text("directory = %s\nmetadata_cache = sometimes\n" % tmp_path)
    out = subprocess.run([HFTPD_BIN, "-f", "-t", "-c", str(conf), "-u", SUITE_USER],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "metadata_cache: 'sometimes' is not 'inotify' or 'off'" in (
        out.stderr + out.stdout)


@pytest.mark.parametrize("mode", MODES)
def test_directory_through_a_symlink_recreated(hftpd, tmp_path, mode):
    """directory names a symbolic link: the directory it points to removed
    and recreated (its parent is not the link's) is seen too."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_bytes(b"old")
    link = tmp_path / "served"
    os.symlink(real, link)
    srv = hftpd(directory=link, mkdir=False, workers=1,
                config=["metadata_cache = %s" % mode])
    with srv.client() as c:
        assert c.metadata("f") == 3
        shutil.rmtree(real)
        with pytest.raises(hftp.HFTPError) as e:
            c.metadata("f")
        assert e.value.code == 202
        real.mkdir()
        (real / "f").write_bytes(b"recreated")
        assert c.metadata("f") == 9
        # the link pointed elsewhere
        other = tmp_path / "other"
        other.mkdir()
        (other / "f").write_bytes(b"other one")
        (other / "g").write_bytes(b"g")
        tmp_link = tmp_path / "served.new"
        os.symlink(other, tmp_link)
        os.replace(tmp_link, link)
        assert c.listing() == ["f", "g"]
        (other / "g").write_bytes(b"gg")
        assert c.metadata("g") == 2
    said = srv.stderr_text().count("is a symbolic link, serving uncached")
    assert said == (1 if mode == "inotify" else 0), srv.stderr_text()
