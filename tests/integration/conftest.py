"""Fixtures for the hftpd integration suite.

The server binary is $HFTPD_BIN (default: <repo>/build/hftpd).  Every test
gets its own server on a free loopback port serving a pytest tmp directory;
the server is stopped with SIGTERM at teardown and must exit within 5 s
(30 s under valgrind).

HFTPD_VALGRIND=1  run the server under valgrind; every process's log must say
                  "ERROR SUMMARY: 0 errors".  Use -m "not slow".
HFTPD_ASAN=1      the binary is built with ASan/UBSan; no report may appear.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLIENT_DIR = REPO / "client"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

import hftp  # noqa: E402

HFTPD_BIN = os.environ.get("HFTPD_BIN") or str(REPO / "build" / "hftpd")
VALGRIND = os.environ.get("HFTPD_VALGRIND") == "1"
ASAN = os.environ.get("HFTPD_ASAN") == "1"

# Multiplier for "promptly" deadlines: valgrind slows the server ~10-50x.
SCALE = 15 if VALGRIND else (3 if ASAN else 1)
START_DEADLINE = 30.0 if VALGRIND else 10.0
STOP_DEADLINE = 30.0 if VALGRIND else 5.0

WORKED_EXAMPLE = b"!Que calor que hace hoy, pinta una birra!"

OK = b"0 OK\r\n"
ST = {code: ("%d %s\r\n" % (code, text)).encode()
      for code, text in hftp.STATUS_TEXT.items()}
HELP_RESPONSE = (b"0 OK\r\nget_file_listing\r\nget_metadata\r\nget_slice\r\n"
                 b"help\r\nquit\r\n\r\n")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: too slow under valgrind (deselected with -m 'not slow')")


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


def process_alive(pid):
    """True unless pid is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


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


def tcp_connections(local_port):
    """Established TCP connections whose local port is local_port (the
    server side of client connections): list of (remote_port, inode)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            p = line.split()
            lport = int(p[1].rsplit(":", 1)[1], 16)
            rport = int(p[2].rsplit(":", 1)[1], 16)
            if lport == local_port and p[3] == "01":
                out.append((rport, int(p[9])))
    return out


def wait_for(pred, timeout, interval=0.01):
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


def require_binary():
    if not os.access(HFTPD_BIN, os.X_OK):
        pytest.fail("hftpd binary not found at %s (run make, or set "
                    "HFTPD_BIN)" % HFTPD_BIN)


def run_hftpd(args, tmp_path, timeout=None, cwd=None):
    """Runs hftpd to completion (for -t, -h, -V and startup failures).
    Returns the CompletedProcess; sanitizer/valgrind logs are checked."""
    require_binary()
    logdir = tmp_path / ("runlogs-%d" % time.monotonic_ns())
    logdir.mkdir()
    argv, env = wrap_command([HFTPD_BIN] + list(args), logdir,
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
    problems = check_tool_logs(str(logdir))
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
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, timeout=None, host=None, port=None):
        """A connected hftp.Client (closed at teardown)."""
        c = hftp.Client(host or self.host, port or self.port,
                        timeout=timeout or 10 * SCALE)
        self.clients.append(c)
        return c

    def workers(self):
        return children_of(self.pid)

    def wait_workers(self, n, timeout=None):
        """Waits until the master has n live children; returns them."""
        return wait_for(lambda: (lambda w: w if len(w) == n else None)(
            [p for p in self.workers() if process_alive(p)]),
            timeout or 5 * SCALE) or self.workers()

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
        left = wait_for(lambda: not [p for p in workers if process_alive(p)],
                        STOP_DEADLINE)
        if not left:
            problems.append("workers %s still alive after the master exited"
                            % [p for p in workers if process_alive(p)])
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
    """
    servers = []

    def start(files=None, workers=2, args=(), config=None, directory=None,
              host="127.0.0.1", port=None, drop_dac=False, mkdir=True):
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
        argv += list(args)
        env = dict(os.environ)
        argv, env = wrap_command(argv, logdir, env)
        if drop_dac and os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot make a "
                            "file unreadable to the server")
            argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--"] + argv
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
