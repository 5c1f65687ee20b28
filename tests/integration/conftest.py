"""The hftpd integration harness: fixtures and the helpers tests import
(`from conftest import ...`).

The server binary is $HFTPD_BIN (default: <repo>/build/hftpd).  Two ways to
run it, each a fixture:

  hftpd / server  a Server: `hftpd -f` on a free loopback port serving a
                  pytest tmp directory, configured on the command line or
                  through a config file; stopped with SIGTERM at teardown
                  and must exit within 5 s (30 s under valgrind).
  daemon          a Daemon: hftpd the way an operator runs it, through the
                  launcher (`hftpd -c FILE`, `hftpd -s ACTION`) or in the
                  foreground, with its config file, pid file and logs under
                  the test's tmp_path.  Every master it ever saw is stopped
                  (then SIGKILLed with its children) at teardown.

Raw-socket helpers (connect, request, RawSlice, ...) cover what the hftp
client library deliberately does not do.

HFTPD_VALGRIND=1  run the server under valgrind; every process's log must say
                  "ERROR SUMMARY: 0 errors".  Use -m "not slow".
HFTPD_ASAN=1      the binary is built with ASan/UBSan; no report may appear.
"""

import glob
import pwd
import random
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLIENT_DIR = REPO / "client"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

import hftp  # noqa: E402

# Debian puts /usr/sbin on root's PATH only, and haproxy and logrotate
# live there: an unprivileged run finds them too.
_path = os.environ.get("PATH", "").split(os.pathsep)
os.environ["PATH"] = os.pathsep.join(
    _path + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in _path])

HFTPD_BIN = os.environ.get("HFTPD_BIN") or str(REPO / "build" / "hftpd")
VALGRIND = os.environ.get("HFTPD_VALGRIND") == "1"
ASAN = os.environ.get("HFTPD_ASAN") == "1"

# Multiplier for "promptly" deadlines: valgrind slows the server ~10-50x.
SCALE = 15 if VALGRIND else (3 if ASAN else 1)
START_DEADLINE = 30.0 if VALGRIND else 10.0
STOP_DEADLINE = 30.0 if VALGRIND else 5.0
# How long the daemon launcher may take to come back (valgrind is slow).
LAUNCH_TIMEOUT = 120 if VALGRIND else 20

MiB = 1 << 20

# The servers the harness starts run as the user running the suite (-u, or
# `user` in a Daemon's config): root's workers would otherwise become
# nobody, who cannot reach a clone in a private folder (root's 0700 home,
# `mktemp -d`).  The tests of the drop to nobody ask for it (user=None)
# and serve a folder of their own (privileged_dir).
SUITE_USER = pwd.getpwuid(os.geteuid()).pw_name

WORKED_EXAMPLE = b"!Que calor que hace hoy, pinta una birra!"

OK = b"0 OK\r\n"
ST = {code: ("%d %s\r\n" % (code, text)).encode()
      for code, text in hftp.STATUS_TEXT.items()}
HELP_RESPONSE = (b"0 OK\r\nget_file_listing\r\nget_metadata\r\nget_slice\r\n"
                 b"help\r\nquit\r\n\r\n")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: too slow under valgrind (deselected with -m 'not slow')")


@pytest.fixture
def privileged_dir():
    """A folder every user can traverse, outside the clone (which may lie
    in a private folder): for the tests of the drop to another user.
    Removed afterwards."""
    path = tempfile.mkdtemp(prefix="hftpd-drop-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


# -- small helpers --------------------------------------------------------

def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def children_of(pid):
    """Direct children pids of pid."""
    path = "/proc/%d/task/%d/children" % (pid, pid)
    try:
        with open(path) as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        pass
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid:
                out.append(int(d))
    return sorted(out)


def descendants(pid):
    """pid's descendants (children first, then theirs)."""
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children_of(p):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def process_alive(pid):
    """True unless pid is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


def live(pids):
    """The pids of pids that are alive (not gone, not zombies)."""
    return [p for p in pids if process_alive(p)]


def wait_workers_of(master, n, timeout, exclude=()):
    """Waits until master has exactly n live children, none of them in
    exclude; returns them, or None after timeout."""
    def ok():
        ws = live(children_of(master))
        return ws if len(ws) == n and not set(ws) & set(exclude) else None
    return wait_for(ok, timeout)


def socket_inodes_of(pid):
    """Inodes of the sockets pid has open."""
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except FileNotFoundError:
        return out
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            out.add(int(m.group(1)))
    return out


TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


def tcp_rows(local_port):
    """The /proc/net/tcp and tcp6 rows (split into fields) of the TCP
    sockets whose local port is local_port, in any state."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            p = line.split()
            if int(p[1].rsplit(":", 1)[1], 16) == local_port:
                yield p


def tcp_sockets(local_port, state):
    """TCP sockets (IPv4 and IPv6) whose local port is local_port, in state
    (a /proc/net/tcp state code): list of (remote_port, inode).  The test's
    own sockets are left out: a client bound to another loopback address
    (127.0.0.2) may get the server's port number as its own."""
    own = socket_inodes_of(os.getpid())
    return [(int(p[2].rsplit(":", 1)[1], 16), int(p[9]))
            for p in tcp_rows(local_port) if p[3] == state and int(p[9]) not in own]


def send_queues(local_port):
    """Bytes in the send queues of every TCP socket on local_port (any state)."""
    return sum(int(p[4].split(":")[0], 16) for p in tcp_rows(local_port))


def closed_by_server(s, timeout):
    """True when the server closes s within timeout (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def tcp_connections(local_port):
    """Established TCP connections whose local port is local_port (the
    server side of client connections): list of (remote_port, inode)."""
    return tcp_sockets(local_port, TCP_ESTABLISHED)


def listener_inode(port):
    """Inode of the listening TCP socket on port (or None)."""
    found = tcp_sockets(port, TCP_LISTEN)
    return found[0][1] if found else None


def worker_of_connection(server_port, client_port, worker_pids):
    """The pid among worker_pids that holds the server side of the
    connection whose client port is client_port (or None)."""
    inodes = {rport: ino for rport, ino in tcp_connections(server_port)}
    ino = inodes.get(client_port)
    if ino is None:
        return None
    for w in worker_pids:
        if ino in socket_inodes_of(w):
            return w
    return None


def cpu_seconds(pid):
    """utime + stime of pid in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pred, timeout, interval=0.01):
    """pred()'s first truthy value, or its last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def wrap_command(argv, logdir, env):
    """Applies the valgrind / ASan wrappers to argv and env."""
    if VALGRIND:
        argv = ["valgrind", "--trace-children=yes", "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=1", "--log-file=%s/vg.%%p.log" % logdir,
                ] + argv
    if ASAN:
        env["ASAN_OPTIONS"] = ("log_path=%s/asan:detect_leaks=1:"
                               "abort_on_error=0" % logdir)
        env["UBSAN_OPTIONS"] = ("log_path=%s/ubsan:print_stacktrace=1:"
                                "halt_on_error=1" % logdir)
    return argv, env


def check_tool_logs(logdir, ignore_pids=()):
    """Problems found in valgrind / sanitizer logs (a list of strings)."""
    problems = []
    if VALGRIND:
        for log in sorted(glob.glob(os.path.join(logdir, "vg.*.log"))):
            pid = int(re.search(r"vg\.(\d+)\.log$", log).group(1))
            if pid in ignore_pids:
                continue
            text = Path(log).read_text(errors="replace")
            if "ERROR SUMMARY: 0 errors" not in text:
                problems.append("valgrind log %s:\n%s" % (log, text[-6000:]))
    if ASAN:
        for log in sorted(glob.glob(os.path.join(logdir, "asan*")) +
                          glob.glob(os.path.join(logdir, "ubsan*"))):
            text = Path(log).read_text(errors="replace")
            problems.append("sanitizer report %s:\n%s" % (log, text[-6000:]))
    return problems


def read_text(path):
    """The file's text, or "" while it does not exist."""
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def require_binary():
    if not os.access(HFTPD_BIN, os.X_OK):
        pytest.fail("hftpd binary not found at %s (run make, or set "
                    "HFTPD_BIN)" % HFTPD_BIN)


def run_hftpd(args, tmp_path, timeout=None, cwd=None, user=SUITE_USER,
              check_logs=True):
    """Runs hftpd to completion (for -t, -h, -V and startup failures), as
    -u user (None: no -u).  Returns the CompletedProcess; sanitizer/valgrind
    logs are checked, unless check_logs is False (a daemon it started still
    runs: the caller checks proc.logdir once it has stopped)."""
    require_binary()
    logdir = tmp_path / ("runlogs-%d" % time.monotonic_ns())
    logdir.mkdir()
    user_args = ["-u", user] if user is not None else []
    argv, env = wrap_command([HFTPD_BIN] + user_args + list(args), logdir,
                             dict(os.environ))
    if timeout is None:
        timeout = 60 if VALGRIND else 10
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=env, cwd=cwd,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail("hftpd %s did not exit within %ss (stderr: %r)"
                    % (" ".join(args), timeout, e.stderr))
    proc.logdir = str(logdir)
    problems = check_tool_logs(proc.logdir) if check_logs else []
    assert not problems, "\n".join(problems)
    # Under valgrind the tool's own messages are in the log file, not
    # stderr, so stderr is the program's.
    proc.stdout_text = proc.stdout.decode(errors="replace")
    proc.stderr_text = proc.stderr.decode(errors="replace")
    return proc


# -- the server ------------------------------------------------------------

class Server:
    """One hftpd -f process (master) and its workers."""

    def __init__(self, tmp_path, directory, host, port, argv, env, logdir,
                 config_path=None):
        self.tmp_path = tmp_path
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.argv = argv
        self.env = env
        self.logdir = logdir
        self.config_path = config_path
        self.stderr_path = tmp_path / ("hftpd.%d.stderr" % port)
        self.proc = None
        self.killed_pids = set()
        self.clients = []
        self.start_failed = False
        self.stopped = False

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     env=self.env, start_new_session=True)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                self.start_failed = True
                pytest.fail("hftpd exited with %s during startup: %s\n%s"
                            % (self.proc.returncode, " ".join(self.argv),
                               self.stderr_text()))
            try:
                with socket.create_connection((self.host, self.port),
                                              timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop(check=False)
                    pytest.fail("hftpd did not accept connections on %s "
                                "port %d within %ss\n%s"
                                % (self.host, self.port, START_DEADLINE,
                                   self.stderr_text()))
                time.sleep(0.02)
        return self

    def stderr_text(self):
        return read_text(self.stderr_path)

    def client(self, timeout=None, host=None, port=None):
        """A connected hftp.Client (closed at teardown)."""
        c = hftp.Client(host or self.host, port or self.port,
                        timeout=timeout or 10 * SCALE)
        self.clients.append(c)
        return c

    def workers(self):
        return children_of(self.pid)

    def wait_workers(self, n, timeout=None, exclude=()):
        """Waits until the master has n live children, none of them in
        exclude; returns them (or all its children after timeout)."""
        return (wait_workers_of(self.pid, n, timeout or 5 * SCALE, exclude)
                or self.workers())

    def kill(self, pid, sig=signal.SIGKILL):
        if sig == signal.SIGKILL:
            self.killed_pids.add(pid)
        os.kill(pid, sig)

    def stop(self, check=True):
        """SIGTERM; the master must exit within STOP_DEADLINE and take its
        workers with it.  Returns a list of problems."""
        problems = []
        for c in self.clients:
            c.close()
        if self.proc is None or self.stopped:
            return problems
        self.stopped = True
        workers = self.workers() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                problems.append("hftpd (pid %d) did not exit within %ss of "
                                "SIGTERM" % (self.proc.pid, STOP_DEADLINE))
                self._killpg()
                self.proc.wait(10)
        elif not self.start_failed:
            problems.append("hftpd exited by itself before teardown with "
                            "status %s" % self.proc.returncode)
        if not wait_for(lambda: not live(workers), STOP_DEADLINE):
            problems.append("workers %s still alive after the master exited"
                            % live(workers))
            self._killpg()
        self._stderr.close()
        if check:
            problems += check_tool_logs(str(self.logdir),
                                        ignore_pids=self.killed_pids)
        return problems

    def _killpg(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def make_tree(directory, files):
    """files: {name: bytes | str | None (directory)}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        p = directory / name
        if content is None:
            p.mkdir()
        else:
            p.write_bytes(content.encode() if isinstance(content, str)
                          else content)


DEFAULT_FILES = {"archivo.txt": WORKED_EXAMPLE, "ten.txt": b"0123456789",
                 "empty": b""}


@pytest.fixture
def hftpd(tmp_path):
    """Factory: hftpd(files=..., workers=2, args=(), config=None, ...) starts
    a server and returns a Server.

    config: None -> the command line carries -d/-a/-p/-w;
            a dict or a list of "key = value" lines -> a config file (listen,
            directory and workers are added unless given) passed with -c.
    drop_dac: when root, run the server without CAP_DAC_OVERRIDE /
            CAP_DAC_READ_SEARCH so that mode-000 files are unreadable.
    user:   the workers' user (-u), SUITE_USER unless the config sets one;
            None: no -u.
    launcher: a command that execs the server (argv prefix), as chrt.
    """
    servers = []

    def start(files=None, workers=2, args=(), config=None, directory=None,
              host="127.0.0.1", port=None, drop_dac=False, mkdir=True,
              user=SUITE_USER, launcher=()):
        require_binary()
        n = len(servers)
        if directory is None:
            directory = tmp_path / ("data%d" % n if n else "data")
        directory = Path(directory)
        if mkdir:
            make_tree(directory, DEFAULT_FILES if files is None else files)
        port = port or free_port(host)
        logdir = tmp_path / ("logs%d" % n)
        logdir.mkdir()
        argv = [HFTPD_BIN, "-f"]
        config_path = None
        if config is None:
            argv += ["-d", str(directory), "-a", host, "-p", str(port)]
            if workers is not None:
                argv += ["-w", str(workers)]
        else:
            lines = (["%s = %s" % kv for kv in config.items()]
                     if isinstance(config, dict) else list(config))
            keys = {ln.split("=")[0].strip() for ln in lines if "=" in ln}
            if "listen" not in keys:
                lines.append("listen = %s:%d" % (
                    "[%s]" % host if ":" in host else host, port))
            if "directory" not in keys:
                lines.append("directory = %s" % directory)
            if "workers" not in keys and workers is not None:
                lines.append("workers = %d" % workers)
            config_path = tmp_path / ("hftpd%d.conf" % n)
            config_path.write_text("# written by conftest\n" +
                                   "\n".join(lines) + "\n")
            argv += ["-c", str(config_path)]
            if "user" in keys:
                user = None
        if user is not None:
            argv += ["-u", user]
        argv += list(args)
        env = dict(os.environ)
        argv, env = wrap_command(argv, logdir, env)
        if drop_dac and os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot make a "
                            "file unreadable to the server")
            argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--"] + argv
        argv = list(launcher) + argv
        srv = Server(tmp_path, directory, host, port, argv, env, logdir,
                     config_path)
        servers.append(srv)
        return srv.start()

    yield start

    problems = []
    for srv in servers:
        problems += srv.stop()
    if problems:
        details = "\n".join(problems)
        for srv in servers:
            details += "\n--- stderr of %s:\n%s" % (" ".join(srv.argv),
                                                   srv.stderr_text()[-4000:])
        pytest.fail(details)


@pytest.fixture
def server(hftpd):
    """A default server: archivo.txt (the worked example), ten.txt, empty."""
    return hftpd()


# -- conversations ----------------------------------------------------------

def converse(srv, request, expected, closed=False, timeout=None):
    """Sends request bytes on a new connection, reads len(expected) bytes
    (or until EOF / timeout) and compares them.  closed=True also requires
    the server to close the connection right after.  Returns the client."""
    c = srv.client(timeout=timeout or 5 * SCALE)
    c.send_raw(request)
    got = c.read_at_most(len(expected))
    assert got == expected, "request %r: expected %r, got %r" % (
        request[:200], expected[:500], got[:500])
    if closed:
        c.sock.settimeout(timeout or 5 * SCALE)
        assert c.at_eof(), "server sent more after %r: %r" % (
            expected, c.pending()[:200])
    return c


def assert_usable(c):
    """The connection still answers requests."""
    c.send_raw(b"help\r\n")
    assert c.read_at_most(len(HELP_RESPONSE)) == HELP_RESPONSE


# -- the daemon ---------------------------------------------------------------

class Daemon:
    """hftpd run as an operator runs it; owns one folder under the test's
    tmp_path holding its config file, pid file, logs and served directory.
    Every master it ever saw (from the pid file or a foreground Popen) is
    remembered, so that cleanup() can stop it and SIGKILL whatever is left:
    no test leaves a daemon behind."""

    def __init__(self, tmp_path, name="hftpd", workers=2, files=None,
                 **settings):
        require_binary()
        self.root = Path(tmp_path) / name
        self.root.mkdir(parents=True)
        self.conf = self.root / "hftpd.conf"
        self.pid_file = self.root / "hftpd.pid"
        self.error_log = self.root / "error.log"
        self.access_log = self.root / "access.log"
        self.toollogs = self.root / "toollogs"
        self.toollogs.mkdir()
        self.port = free_port()
        self.directory = self.root / "data"
        make_tree(self.directory, files if files is not None
                  else {"hello.txt": b"hello, world\n"})
        self.settings = {
            "listen": "127.0.0.1:%d" % self.port,
            "directory": str(self.directory),
            "workers": str(workers),
            "pid_file": str(self.pid_file),
            "error_log": str(self.error_log),
            "access_log": str(self.access_log),
            "log_level": "info",
            "shutdown_timeout": "%ds" % (30 * SCALE),
            "user": SUITE_USER,
        }
        self._update(settings)
        self.write_config()
        self.masters = set()      # every master pid seen
        self.killed_pids = set()  # SIGKILLed: their tool logs are partial
        self.fg = []              # foreground Popen objects
        self.master = None

    @property
    def workers_wanted(self):
        return int(self.settings["workers"])

    # -- config -------------------------------------------------------------

    def _update(self, changes):
        """Applies changes to self.settings: a value of None removes the key
        (user=None: no `user`, so that root's workers become nobody)."""
        for k, v in changes.items():
            if v is None:
                self.settings.pop(k, None)
            else:
                self.settings[k] = str(v)

    def write_config(self, extra_lines=(), **changes):
        """(Re)writes the config file atomically from self.settings updated
        with changes (None removes a key); extra_lines are appended as they
        are."""
        self._update(changes)
        lines = ["# written by conftest.Daemon"]
        lines += ["%s = %s" % kv for kv in self.settings.items()]
        lines += list(extra_lines)
        tmp = self.conf.with_name(self.conf.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.conf)
        return len(lines)         # number of the last line

    # -- processes ----------------------------------------------------------

    def command(self, *args, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return wrap_command([HFTPD_BIN] + list(args), str(self.toollogs),
                            full_env)

    def run(self, *args, env=None, timeout=LAUNCH_TIMEOUT, cwd=None):
        """Runs hftpd with args (stdout and stderr captured through pipes, so
        a daemon that kept the launcher's stdio open would make this time
        out).  Returns the CompletedProcess with .out/.err as str."""
        argv, full_env = self.command(*args, env=env)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=full_env, timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired as e:
            self.note_pid_file()
            raise AssertionError(
                "hftpd %s did not return within %ss (does the daemon keep the "
                "launcher's stdout/stderr open?) stderr: %r"
                % (" ".join(args), timeout, e.stderr))
        r.out = r.stdout.decode(errors="replace")
        r.err = r.stderr.decode(errors="replace")
        self.note_pid_file()
        return r

    def start(self, *extra_args, env=None, cwd=None, conf=None):
        """Daemon start through the launcher; asserts exit 0."""
        r = self.run("-c", str(conf or self.conf), *extra_args, env=env,
                     cwd=cwd)
        assert r.returncode == 0, (
            "launcher exited %d: stderr %r\nerror log:\n%s"
            % (r.returncode, r.err, self.log()))
        pid = self.read_pid()
        assert pid is not None, "no pid file %s after start" % self.pid_file
        self.master = pid
        self.masters.add(pid)
        return r

    def start_foreground(self, env=None):
        """hftpd -f -c CONF as a child (its stderr goes to fg.stderr)."""
        argv, full_env = self.command("-f", "-c", str(self.conf), env=env)
        err = open(self.root / "fg.stderr", "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                             stderr=err, env=full_env, start_new_session=True)
        err.close()
        self.fg.append(p)
        self.master = p.pid
        self.masters.add(p.pid)
        return p

    def ctl(self, action, conf=None, cwd=None):
        return self.run("-s", action, "-c", str(conf or self.conf), cwd=cwd)

    def read_pid(self):
        try:
            text = self.pid_file.read_text()
        except FileNotFoundError:
            return None
        m = re.fullmatch(r"\s*(\d+)\s*", text)
        return int(m.group(1)) if m else None

    def note_pid_file(self):
        pid = self.read_pid()
        if pid is not None and process_alive(pid):
            try:      # only remember it if it is an hftpd
                exe = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                exe = ""
            if "hftpd" in exe or "valgrind" in exe or "memcheck" in exe:
                self.masters.add(pid)

    def workers(self, master=None):
        """The master's live children (its workers)."""
        return sorted(live(children_of(master or self.master)))

    def wait_workers(self, n, timeout=None, exclude=()):
        """Waits until the master has exactly n live children, none of them
        in exclude; returns them (or the live children after timeout)."""
        return (wait_workers_of(self.master, n, timeout or 10 * SCALE,
                                exclude) or self.workers())

    def kill(self, pid, sig=signal.SIGKILL):
        if sig == signal.SIGKILL:
            self.killed_pids.add(pid)
        os.kill(pid, sig)

    def master_fds(self):
        out = {}
        d = "/proc/%d/fd" % self.master
        for fd in os.listdir(d):
            try:
                out[int(fd)] = os.readlink("%s/%s" % (d, fd))
            except OSError:
                pass
        return out

    def gone(self, pids):
        return not live(pids)

    # -- logs ---------------------------------------------------------------

    def log(self, path=None):
        """The error log's text (or the file's at path)."""
        return read_text(path or self.error_log)

    def fg_log(self):
        return self.log(self.root / "fg.stderr")

    def wait_log(self, pattern, timeout=None, path=None, count=1):
        """Waits until the log at path (default: the error log) has count
        lines matching the regex pattern; returns the matches (or [])."""
        rx = re.compile(pattern, re.M)

        def found():
            m = rx.findall(self.log(path))
            return m if len(m) >= count else None
        return wait_for(found, timeout or 10 * SCALE, 0.02) or []

    # -- teardown -----------------------------------------------------------

    def cleanup(self):
        """Stops every master seen with SIGTERM (they must be gone within
        STOP_DEADLINE), then SIGKILLs anything left.  Returns problems."""
        problems = []
        self.note_pid_file()
        for pid in sorted(self.masters):
            if not process_alive(pid):
                continue
            family = [pid] + descendants(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            if not wait_for(lambda: self.gone(family), STOP_DEADLINE):
                problems.append("hftpd master %d (or its children %s) still "
                                "alive %ss after SIGTERM"
                                % (pid, live(family[1:]), STOP_DEADLINE))
                for p in [pid] + descendants(pid) + family[1:]:
                    self.killed_pids.add(p)
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                wait_for(lambda: self.gone(family), 5)
        for p in self.fg:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        problems += check_tool_logs(str(self.toollogs),
                                    ignore_pids=self.killed_pids)
        return problems


@pytest.fixture
def daemon(tmp_path):
    """Factory: daemon(name=None, workers=2, files={...}, base=None,
    **config) -> a Daemon (config written, not started) in a folder under
    base (default tmp_path; privileged_dir for a daemon whose workers drop
    to another user)."""
    made = []

    def make(name=None, base=None, **kw):
        d = Daemon(base or tmp_path, name=name or "hftpd%d" % len(made), **kw)
        made.append(d)
        return d

    yield make
    problems = []
    for d in made:
        problems += d.cleanup()
    if problems:
        pytest.fail("\n".join(problems) + "".join(
            "\n--- error log of %s:\n%s" % (d.root, d.log()[-4000:])
            for d in made))


# -- raw-socket transfers ---------------------------------------------------

def connect(port, timeout=None, rcvbuf=None):
    """A connection to 127.0.0.1:port (rcvbuf: a small receive buffer, set
    before connecting so that the window follows it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout or 10 * SCALE)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(sock, marker, limit=4096):
    buf = b""
    while marker not in buf:
        data = sock.recv(limit)
        if not data:
            raise ConnectionError("closed after %r" % buf[:200])
        buf += data
        if len(buf) > limit:
            raise AssertionError("no %r in %r" % (marker, buf[:200]))
    i = buf.index(marker) + len(marker)
    return buf[:i], buf[i:]


def request(port, line, timeout=None):
    """One request on a fresh connection, then quit; returns all bytes."""
    with connect(port, timeout) as s:
        s.sendall(line + b"quit\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


class RawSlice:
    """One `get_slice NAME OFF SIZE raw` download, read on its own thread.

    The reader takes the header and at least `prefix` body bytes, sets
    .started, then (if a gate Event is given) waits on it before reading the
    rest, so tests can keep a transfer in progress for as long as they need.
    The body is checked against `expected` (bytes of the slice) through
    SHA-1, so 64 MiB slices are verified without being held in memory.
    """

    def __init__(self, port, name, offset, expected, gate=None,
                 prefix=256 * 1024, timeout=None):
        self.port = port
        self.name = name
        self.offset = offset
        self.size = len(expected)
        self.digest = hashlib.sha1(expected).digest()
        self.gate = gate
        self.prefix = min(prefix, self.size)
        self.timeout = timeout or 60 * SCALE
        self.started = threading.Event()
        self.done = threading.Event()
        self.received = 0
        self.error = None
        self.header = b""
        self.tail = None
        self.ok = False
        self.local_port = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        h = hashlib.sha1()
        try:
            with connect(self.port, self.timeout) as s:
                self.local_port = s.getsockname()[1]
                s.sendall(b"get_slice %s %d %d raw\r\n"
                          % (self.name.encode(), self.offset, self.size))
                self.header, rest = read_until(s, b"\r\n\r\n")
                want = b"0 OK\r\nContent-Length: %d\r\n\r\n" % self.size
                if self.header != want:
                    raise AssertionError("header %r, expected %r"
                                         % (self.header, want))
                rest = rest[:self.size + 1]
                h.update(rest[:self.size])
                self.received = len(rest)
                buf = bytearray(1 * MiB)
                mv = memoryview(buf)
                while self.received < self.size:
                    if self.received >= self.prefix and not self.started.is_set():
                        self.started.set()
                        if self.gate is not None:
                            self.gate.wait(self.timeout)
                    n = s.recv_into(mv, min(len(buf),
                                            self.size - self.received))
                    if n == 0:
                        raise ConnectionError(
                            "connection closed after %d of %d body bytes"
                            % (self.received, self.size))
                    h.update(mv[:n])
                    self.received += n
                self.started.set()
                # Nothing may follow the body: ask for one more thing and
                # make sure its answer is the very next byte (a draining
                # worker may close instead: then nothing at all may come).
                tail = b""
                try:
                    s.sendall(b"quit\r\n")
                    while len(tail) < 6:
                        d = s.recv(6 - len(tail))
                        if not d:
                            break
                        tail += d
                except (ConnectionResetError, BrokenPipeError):
                    pass
                if tail not in (b"0 OK\r\n", b""):
                    raise AssertionError("after the body: %r" % tail[:100])
                self.tail = tail
            if h.digest() != self.digest:
                raise AssertionError("body of %d bytes differs from the file"
                                     % self.received)
            self.ok = True
        except Exception as e:       # reported by the test
            self.error = e
        finally:
            self.started.set()
            self.done.set()

    def join(self, timeout=None):
        self.thread.join(timeout or self.timeout)
        return not self.thread.is_alive()

    def describe(self):
        return "%s@%d: received %d/%d, error %r" % (
            self.name, self.offset, self.received, self.size, self.error)


# -- background load ---------------------------------------------------------

class Load:
    """Client threads looping short connections of checked requests
    (metadata, listing, slices raw and base64) until stopped.  `check`
    judges each answer: by default it must equal the file's bytes."""

    def __init__(self, port, files, threads=3, check=None, listed=None):
        self.port = port
        self.files = files
        self.names = sorted(files)
        self.listed = sorted(listed or files)
        self.check = check
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _one(self, c, rng):
        """True, or what was wrong."""
        name = rng.choice(self.names)
        data = self.files[name]
        kind = rng.randrange(4)
        if kind == 0:
            got = c.metadata(name)
            return got == len(data) or ("metadata", name, got)
        if kind == 3:
            got = c.listing()
            return got == self.listed or ("listing", got)
        off = rng.randrange(len(data) + 1)
        size = rng.randrange(len(data) - off + 1)
        got = c.slice(name, off, size, raw=(kind == 1))
        return got == data[off:off + size] or ("slice", name, off, size, kind,
                                                len(got))

    def _run(self, i):
        rng = random.Random(i)
        while not self.stop.is_set() and len(self.failures) < 20:
            try:
                with hftp.Client("127.0.0.1", self.port, timeout=20 * SCALE) as c:
                    for _ in range(5):
                        if self.check is not None:
                            ok = self.check(c, rng)
                        else:
                            ok = self._one(c, rng)
                        with self.lock:
                            self.requests += 1
                            if ok is not True:
                                self.failures.append("thread %d: wrong answer %r"
                                                     % (i, ok))
            except Exception as e:    # noqa: BLE001 - counted as a failure
                with self.lock:
                    self.failures.append("thread %d after %d requests: %r"
                                         % (i, self.requests, e))

    def wait_progress(self, n=1, timeout=None):
        base = self.requests
        return wait_for(lambda: self.requests >= base + n or self.failures,
                        timeout or 10 * SCALE)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60 * SCALE)
        return not any(t.is_alive() for t in self.threads)
