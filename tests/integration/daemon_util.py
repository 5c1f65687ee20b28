"""Helpers for test_daemon.py: hftpd run as a real daemon (launcher, pid
file, signals, logs) and raw-socket slice transfers.

A Daemon owns one folder under the test's tmp_path holding its config file,
pid file, logs and served directories.  Every master it ever saw (from the pid
file or a foreground Popen) is remembered, so that teardown can stop it and
SIGKILL whatever is left (master and its children): no test leaves a daemon
behind.
"""

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

from conftest import (
    HFTPD_BIN, SCALE, STOP_DEADLINE, VALGRIND, check_tool_logs,
    children_of, free_port, process_alive, require_binary, socket_inodes_of,
    tcp_connections, wait_for, wrap_command,
)

MiB = 1 << 20

# How long a launcher may take to come back (valgrind start-up is slow).
LAUNCH_TIMEOUT = 120 if VALGRIND else 20


def live(pids):
    return [p for p in pids if process_alive(p)]


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


def poll_until(pred, timeout, interval=0.01):
    """pred()'s first truthy value, or its last value after timeout."""
    return wait_for(pred, timeout, interval)


# -- the daemon ---------------------------------------------------------------

class Daemon:
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
        make_files(self.directory, files if files is not None
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
        }
        self.settings.update({k: str(v) for k, v in settings.items()})
        self.write_config()
        self.masters = set()      # every master pid seen
        self.killed = set()       # pids SIGKILLed (their tool logs are partial)
        self.fg = []              # foreground Popen objects
        self.master = None

    @property
    def workers_wanted(self):
        return int(self.settings["workers"])

    # -- config -------------------------------------------------------------

    def write_config(self, extra_lines=(), **changes):
        """(Re)writes the config file atomically from self.settings updated
        with changes; extra_lines are appended as they are."""
        self.settings.update({k: str(v) for k, v in changes.items()})
        lines = ["# test_daemon.py"]
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
        in exclude; returns them (or the last set seen)."""
        last = []

        def ok():
            nonlocal last
            last = self.workers()
            return len(last) == n and not set(last) & set(exclude)
        poll_until(ok, timeout or 10 * SCALE)
        return last

    def kill(self, pid, sig=signal.SIGKILL):
        if sig == signal.SIGKILL:
            self.killed.add(pid)
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
        path = Path(path or self.error_log)
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def fg_log(self):
        return self.log(self.root / "fg.stderr")

    def wait_log(self, pattern, timeout=None, path=None, count=1):
        """Waits until the log at path (default: the error log) has count
        lines matching the regex pattern; returns the matches (or [])."""
        rx = re.compile(pattern, re.M)

        def found():
            m = rx.findall(self.log(path))
            return m if len(m) >= count else None
        return poll_until(found, timeout or 10 * SCALE, 0.02) or []

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
            if not poll_until(lambda: self.gone(family), STOP_DEADLINE):
                problems.append("hftpd master %d (or its children %s) still "
                                "alive %ss after SIGTERM"
                                % (pid, live(family[1:]), STOP_DEADLINE))
                for p in [pid] + descendants(pid) + family[1:]:
                    self.killed.add(p)
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                poll_until(lambda: self.gone(family), 5)
        for p in self.fg:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        problems += check_tool_logs(str(self.toollogs),
                                    ignore_pids=self.killed)
        return problems


def make_files(directory, files):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)


# -- raw-socket transfers ---------------------------------------------------

def connect(port, timeout=None):
    s = socket.create_connection(("127.0.0.1", port),
                                 timeout=timeout or 10 * SCALE)
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
