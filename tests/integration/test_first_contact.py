"""First contact: what a newcomer types works from any folder.

`make run` serves as the user who runs it (a clone in a private folder,
root's 0700 home or `mktemp -d`, included); -u / -g set the workers' user
and group from the command line, kept across reloads and marked
"# command line" by -T, which names whom the workers run as when the
config does not; -a takes an address without a port and says so; an IPv6
listener is IPv6 only; `-s reload` without a config file has nothing to
check and signals; tests/install-deps.sh needs no privilege when nothing
is missing.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

import hftp
from conftest import (HFTPD_BIN, REPO, SCALE, SUITE_USER, VALGRIND,
                      check_tool_logs, children_of, free_port, have_ipv6_loopback, make_tree,
                      process_alive, request, run_hftpd, wait_for)

HELLO = b"hello, world\n"
ROOT = os.geteuid() == 0


def t_keys(text):
    """-T's lines as {key: (value, origin)} (the first of a repeated key)."""
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+= (.*?)\s+# (.*)$", line)
        if m:
            keys.setdefault(m.group(1), (m.group(2), m.group(3)))
    return keys


@pytest.fixture
def private_folder():
    """A folder only its owner can enter, like root's home or mktemp -d."""
    top = tempfile.mkdtemp(prefix="hftpd-private-")
    os.chmod(top, 0o700)
    yield Path(top)
    shutil.rmtree(top, ignore_errors=True)


# -- make run ---------------------------------------------------------------

@pytest.mark.skipif(VALGRIND, reason="make run starts the binary unwrapped")
def test_make_run_serves_from_a_private_folder(private_folder):
    """`make run` as root in a 0700 folder used to exit 1: its workers
    became nobody, who could not open the directory."""
    build = Path(HFTPD_BIN).parent
    if Path(HFTPD_BIN).name != "hftpd" or not shutil.which("make"):
        pytest.skip("HFTPD_BIN is not BUILD/hftpd, or no make")
    data = private_folder / "files"
    make_tree(data, {"hello.txt": HELLO})
    log = private_folder / "run.log"
    # make run listens on 0.0.0.0: the port may be taken by another
    # session's socket in the meantime; a few tries
    for _ in range(3):
        p, port, got = make_run(build, data, log)
        try:
            if got == HELLO:
                check_make_run(p, log)
                check_ctrl_c(p, log)
                return
        finally:
            stop_group(p)
        if "Address already in use" not in log.read_text(errors="replace"):
            break
    pytest.fail("make run: %r; output:\n%s" % (got, log.read_text(errors="replace")))


def make_run(build, data, log):
    """Starts make run on a free port; (Popen, port, what it served)."""
    port = free_port("0.0.0.0")     # free on every address, as make run binds
    with open(log, "wb") as out:
        # -o: use the binary under test as it is, never rebuild it here
        p = subprocess.Popen(["make", "-s", "-C", str(REPO), "-o", HFTPD_BIN,
                              "run", "BUILD=%s" % build, "PORT=%d" % port,
                              "DIR=%s" % data],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True)

    def answers():
        if p.poll() is not None:
            return "exited"
        try:
            with hftp.Client("127.0.0.1", port, timeout=5 * SCALE) as c:
                return c.slice("hello.txt", 0, len(HELLO))
        except OSError:
            return None
    return p, port, wait_for(answers, 20 * SCALE, 0.1)


def check_make_run(p, log):
    """make run's master and workers run as the user who ran make."""
    hftpd = children_of(p.pid)
    workers = [w for c in hftpd for w in children_of(c)]
    assert workers
    for pid in hftpd + workers:
        uid = int(re.search(r"^Uid:\s+(\d+)", Path("/proc/%d/status" % pid)
                            .read_text(), re.M).group(1))
        assert uid == os.geteuid()
    if ROOT:
        assert "user = root: workers keep every privilege" in \
            log.read_text(errors="replace")


def check_ctrl_c(p, log):
    """Ctrl-C, as a terminal sends it to the whole foreground group: a fast
    stop whose workers' exits are part of it (they exited on their own
    SIGINT, and the master once logged each as a death and replaced it)."""
    os.killpg(p.pid, signal.SIGINT)
    text = wait_for(lambda: (lambda t: t if " exiting" in t else None)(
        log.read_text(errors="replace")), 10 * SCALE, 0.1)
    assert text, "no 'exiting' after Ctrl-C:\n" + log.read_text(errors="replace")
    assert "fast stop" in text
    assert "replacing it" not in text and "control messages" not in text, text
    warns = [ln for ln in text.splitlines() if " warn " in ln and
             "workers keep every privilege" not in ln]
    assert warns == [], text


def stop_group(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10 * SCALE)
    except ProcessLookupError:
        p.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)


# -- -u / -g ----------------------------------------------------------------

def test_u_and_g_are_checked_and_marked_command_line(tmp_path):
    data = tmp_path / "d"
    make_tree(data, {"a": b"a"})
    me = pwd.getpwuid(os.geteuid())
    group = __import__("grp").getgrgid(me.pw_gid).gr_name
    r = run_hftpd(["-T", "-f", "-d", str(data), "-p", str(free_port()),
                   "-g", group], tmp_path)
    assert r.returncode == 0, r.stderr_text
    keys = t_keys(r.stdout_text)
    assert keys["user"] == (SUITE_USER, "command line"), r.stdout_text
    assert keys["group"] == (group, "command line"), r.stdout_text
    assert keys["directory"][1] == "command line"
    assert keys["listen"][1] == "command line"
    r = run_hftpd(["-t", "-f", "-d", str(data), "-u", "no-such-user-x"],
                  tmp_path, user=None)
    assert r.returncode == 1
    assert "user 'no-such-user-x': no such user" in r.stderr_text
    r = run_hftpd(["-t", "-f", "-d", str(data), "-u", "bad name"], tmp_path,
                  user=None)
    assert r.returncode == 1
    assert "-u user: 'bad name' is not a valid name" in r.stderr_text


def test_T_names_whom_the_workers_run_as(tmp_path, privileged_dir):
    """No `user`: -T used to print `user = (none)` where the workers become
    nobody."""
    data = privileged_dir / "d"
    make_tree(data, {"a": b"a"})
    r = run_hftpd(["-T", "-f", "-d", str(data)], tmp_path, user=None)
    assert r.returncode == 0, r.stderr_text
    assert not re.search(r"^(user|group) += \(none\)", r.stdout_text, re.M)
    keys = t_keys(r.stdout_text)
    if ROOT:
        assert keys["user"] == ("nobody",
                                "default: started as root without `user`")
        assert keys["group"][0] == "nogroup"
    else:
        assert keys["user"][0] == SUITE_USER
        assert keys["user"][1].startswith("default: not root")


@pytest.mark.skipif(not ROOT, reason="dropping to another user needs root")
def test_u_overrides_the_file_and_survives_reload(daemon, privileged_dir):
    nobody = pwd.getpwnam("nobody")
    d = daemon(workers=1, user="root", base=privileged_dir)
    d.start("-u", "nobody")
    first = d.wait_workers(1)

    def uids(pids):
        return {int(re.search(r"^Uid:\s+(\d+)", Path("/proc/%d/status" % w)
                              .read_text(), re.M).group(1)) for w in pids}
    assert uids(first) == {nobody.pw_uid}
    assert d.ctl("reload").returncode == 0
    assert d.wait_log(r"configuration reloaded: generation 2")
    second = d.wait_workers(1, exclude=first)
    assert second
    # a worker just forked is root until it drops: wait for the drop
    assert wait_for(lambda: uids(second) == {nobody.pw_uid}, 10 * SCALE), \
        uids(second)


# -- -a and IPv6 --------------------------------------------------------------

@pytest.mark.parametrize("addr", ["[::]:%d", "127.0.0.1:%d"])
def test_a_with_a_port_is_refused_by_name(tmp_path, addr):
    """-a '[::]:N' used to report "port must be a number" for [::]:N:19500."""
    data = tmp_path / "d"
    make_tree(data, {"a": b"a"})
    text = addr % free_port()
    r = run_hftpd(["-t", "-f", "-d", str(data), "-a", text], tmp_path)
    assert r.returncode == 1
    assert "-a '%s': -a takes an address without a port" % text \
        in r.stderr_text, r.stderr_text
    assert "give the port with -p" in r.stderr_text


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_any_is_ipv6_only(hftpd):
    """[::] listens on IPv6 only, as documented (IPV6_V6ONLY)."""
    for _ in range(20):
        port = free_port("::1")
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    srv = hftpd(host="::", port=port)
    with socket.create_connection(("::1", port), timeout=5 * SCALE) as s:
        s.sendall(b"help\r\n")
        assert s.recv(6) == b"0 OK\r\n"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE)
    assert srv.pid


# -- -s reload without a config file -------------------------------------------

def test_reload_without_a_config_file_checks_nothing(tmp_path):
    """Without -c and without a default config file, -s reload used to check
    the built-in `testdata` directory (of whatever folder it ran in) and
    fail on it."""
    conf = re.search(r"^config file: (.*)$",
                     run_hftpd(["-V"], tmp_path).stdout_text, re.M).group(1)
    if os.path.exists(conf):
        pytest.skip("a default config file exists: %s" % conf)
    r = run_hftpd(["-s", "reload"], tmp_path, cwd=tmp_path, user=None)
    assert "testdata" not in r.stderr_text, r.stderr_text
    assert "no config file: nothing to check" in r.stderr_text, r.stderr_text


@pytest.mark.skipif(not ROOT, reason="the default pid file is root's")
def test_reload_without_a_config_file_signals(tmp_path):
    """A master started from the command line alone is reloaded by
    `hftpd -s reload` alone: a new generation of workers, same options."""
    v = run_hftpd(["-V"], tmp_path).stdout_text
    conf = re.search(r"^config file: (.*)$", v, re.M).group(1)
    pid_file = re.search(r"^pid file: (.*)$", v, re.M).group(1)
    if os.path.exists(conf) or os.path.exists(pid_file):
        pytest.skip("a default config or pid file exists")
    data = tmp_path / "d"
    make_tree(data, {"hello.txt": HELLO})
    port = free_port()
    # the daemon outlives its launcher: its tool logs are checked once stopped
    started = run_hftpd(["-d", str(data), "-a", "127.0.0.1", "-p", str(port),
                         "-w", "1"], tmp_path, timeout=30 * SCALE, check_logs=False)
    assert started.returncode == 0, started.stderr_text
    master = int(Path(pid_file).read_text())
    try:
        assert wait_for(lambda: len(children_of(master)) == 1, 10 * SCALE)
        first = children_of(master)
        r = run_hftpd(["-s", "reload"], tmp_path, cwd=tmp_path, user=None)
        assert r.returncode == 0, r.stderr_text
        assert wait_for(lambda: [w for w in children_of(master)
                                 if w not in first], 10 * SCALE)
        assert request(port, b"get_metadata hello.txt\r\n") == \
            b"0 OK\r\n13\r\n0 OK\r\n"
    finally:
        run_hftpd(["-s", "stop"], tmp_path, user=None)
        wait_for(lambda: not os.path.exists(pid_file), 10 * SCALE)
    assert wait_for(lambda: not process_alive(master), 10 * SCALE)
    problems = check_tool_logs(started.logdir)
    assert not problems, "\n".join(problems)


# -- install-deps ---------------------------------------------------------------

@pytest.mark.skipif(not ROOT or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run it as nobody")
def test_install_deps_needs_no_privilege_when_all_is_there():
    """As a user whose PATH has no /usr/sbin, the script used to see
    logrotate (and more) missing, and fail running apt-get."""
    script = str(REPO / "tests" / "install-deps.sh")
    r = subprocess.run(["sh", script], capture_output=True, text=True,
                       timeout=120)
    if "test dependencies present" not in r.stdout:
        pytest.skip("dependencies missing here: %s" % r.stdout)
    nobody = pwd.getpwnam("nobody")
    tmp = tempfile.mkdtemp(prefix="hftpd-deps-")
    try:
        shutil.copy(script, tmp + "/install-deps.sh")
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        r = subprocess.run(
            ["setpriv", "--reuid=%d" % nobody.pw_uid,
             "--regid=%d" % nobody.pw_gid, "--clear-groups",
             "sh", tmp + "/install-deps.sh"],
            capture_output=True, text=True, timeout=120, cwd=tmp,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp,
                 "TMPDIR": tmp})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test dependencies present" in r.stdout
