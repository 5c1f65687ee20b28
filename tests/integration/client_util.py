"""Helpers for the test_client_*.py files: running the hftp command, reading
hftpd's access log, and small fake servers of the older HFTP generations."""

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading

from conftest import CLIENT_DIR, SCALE

MiB = 1 << 20
ENV = dict(os.environ, PYTHONPATH=str(CLIENT_DIR))
ENV.pop("COLUMNS", None)


def hftp_cmd(*args):
    return [sys.executable, "-m", "hftp"] + [str(a) for a in args]


def hftp_run(*args, cwd=None, timeout=60, stdin=subprocess.DEVNULL):
    return subprocess.run(hftp_cmd(*args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=stdin, env=ENV,
                          cwd=cwd, timeout=timeout * SCALE)


def sigint_default():
    """preexec_fn: the child starts with SIGINT at its default, as a command
    typed at a terminal does.  A test run in the background of a script
    (a CI runner, `make test &`) inherits SIGINT ignored, and hftp, like
    every program, keeps an inherited ignore: a test that sends Ctrl-C must
    not depend on how pytest itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sigint_ignored():
    """preexec_fn: the child starts with SIGINT ignored, as a background job
    of a script does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def hftp_popen(*args, cwd=None, **kw):
    kw.setdefault("preexec_fn", sigint_default)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(hftp_cmd(*args), env=ENV, cwd=cwd,
                            stdin=subprocess.DEVNULL, **kw)


def addr(srv):
    return "%s:%d" % (srv.host, srv.port)


def logged_server(hftpd, tmp_path, files, **config):
    """An hftpd with an access log (srv.access_log)."""
    log = tmp_path / ("access%d.log" % len(list(tmp_path.glob("access*"))))
    cfg = {"access_log": str(log)}
    cfg.update(config)
    srv = hftpd(files=files, config=cfg)
    srv.access_log = log
    return srv


_ACCESS_RE = re.compile(r'^\S+ \S+ "(.*)" (\d+) (\d+) \d+$')


def access_lines(srv):
    """Stops the server (which flushes its log) and returns
    [(request, status, bytes)] in order."""
    problems = srv.stop()
    assert not problems, problems
    out = []
    for line in srv.access_log.read_text().splitlines():
        m = _ACCESS_RE.match(line)
        assert m, line
        out.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return out


def slice_requests(lines):
    """[(offset, size, raw)] of the get_slice requests in access lines."""
    out = []
    for request, status, _ in lines:
        e = request.split(" ")
        if e[0] == "get_slice" and status == 0:
            out.append((int(e[2]), int(e[3]), len(e) == 5))
    return out


class FakeServer:
    """An HFTP server of an older generation, for the client's sake:
    generation "base64" (2019-2025: no help, no raw) or "fragments"
    (2008-2018).  Serves files from a dict; records the request lines."""

    def __init__(self, files, generation):
        self.files = files
        self.generation = generation
        self.requests = []
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.host = "127.0.0.1"
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self._stop = True
        self.lsock.close()

    def _accept(self):
        while not self._stop:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        buf = b""
        with s:
            while True:
                while b"\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        return
                    buf += data
                line, buf = buf.split(b"\r\n", 1)
                self.requests.append(line.decode())
                reply = self._answer(line.decode().split(" "))
                s.sendall(reply)
                if line == b"quit":
                    return

    def _answer(self, e):
        if e[0] == "quit" and len(e) == 1:
            return b"0 OK\r\n"
        if e[0] == "get_file_listing" and len(e) == 1:
            return b"0 OK\r\n" + b"".join(
                n.encode() + b"\r\n" for n in sorted(self.files)) + b"\r\n"
        if e[0] == "get_metadata" and len(e) == 2:
            if e[1] not in self.files:
                return b"202 FILE NOT FOUND\r\n"
            return b"0 OK\r\n%d\r\n" % len(self.files[e[1]])
        if e[0] == "get_slice" and len(e) == 4:
            data = self.files.get(e[1])
            if data is None:
                return b"202 FILE NOT FOUND\r\n"
            off, size = int(e[2]), int(e[3])
            if off + size > len(data):
                return b"203 OFFSET EXCEEDS FILE SIZE\r\n"
            body = data[off:off + size]
            if self.generation == "base64":
                return b"0 OK\r\n" + base64.b64encode(body) + b"\r\n"
            frags = b"".join(b"%d %s\r\n" % (len(body[i:i + 70000]),
                                             body[i:i + 70000])
                             for i in range(0, len(body), 70000))
            return b"0 OK\r\n" + frags + b"0 \r\n"
        if e[0] in ("get_file_listing", "get_metadata", "get_slice", "quit"):
            return b"201 INVALID ARGUMENTS FOR COMMAND\r\n"
        return b"200 NO SUCH COMMAND\r\n"
