"""TLS for the tests: certificates made with the openssl command in a
test's folder, a small TLS terminator (Python's ssl) that relays the plain
bytes to an hftpd, and the shipped HAProxy configurations adapted to a
test's ports (conf/haproxy.cfg and conf/haproxy-tls.cfg)."""

import re
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

# Columns of HAProxy's "show stat" CSV.
STAT_SCUR = 4
STAT_STATUS = 17
STAT_CHECK_STATUS = 36          # L7OK, L7STS (wrong HTTP status), L4CON, ...
STAT_CHECK_CODE = 37            # the HTTP status of an HTTP check

LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


@dataclass
class Certs:
    ca: Path            # the CA that signed cert
    other_ca: Path      # a CA that signed nothing here
    cert: Path          # server certificate: localhost and 127.0.0.1
    key: Path
    pem: Path           # cert then key, the file HAProxy's `crt` reads


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, timeout=60,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args),
                                                  r.stderr.decode())


def _new_ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=%s" % cn, "-keyout", name + ".key",
             "-out", name + ".pem", cwd=d)
    return d / (name + ".pem")


def make_certs(directory):
    """A CA, a server certificate it signs (for localhost and 127.0.0.1)
    and an unrelated second CA, in directory.  Skips without openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian: openssl)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = _new_ca(d, "ca", "hftp test CA")
    other = _new_ca(d, "other-ca", "hftp other CA")
    (d / "leaf.ext").write_text(LEAF_EXTENSIONS)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext",
             "-out", "server.pem", cwd=d)
    pem = d / "haproxy.pem"
    pem.write_bytes((d / "server.pem").read_bytes() +
                    (d / "server.key").read_bytes())
    return Certs(ca=ca, other_ca=other, cert=d / "server.pem",
                 key=d / "server.key", pem=pem)


class TLSTerminator:
    """Accepts TLS on a loopback port and relays the plain bytes, both ways,
    to backend (host, port).  Counts connections and handshakes; a failed
    handshake closes the connection without a byte, as HAProxy does."""

    def __init__(self, certs, backend, timeout=10):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(certs.cert), str(certs.key))
        self.backend = backend
        self.timeout = timeout
        self.accepted = 0
        self.handshakes = 0
        self.failures = []          # handshake errors, as reprs
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept_loop,
                                          daemon=True)
        self._accepter.start()

    def close(self):
        self._stop.set()
        self._accepter.join(5)
        self._lsock.close()
        for t in self._threads:
            t.join(self.timeout + 5)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                raw, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw):
        raw.settimeout(self.timeout)
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ValueError) as e:
            with self._lock:
                self.failures.append(repr(e))
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
        try:
            with socket.create_connection(self.backend, self.timeout) as up:
                self._relay(tls, up)
        except OSError:
            pass
        finally:
            tls.close()

    def _relay(self, tls, up):
        """Until the backend closes (the client's end is passed on as a
        shutdown of the backend's write side)."""
        sel = selectors.DefaultSelector()
        sel.register(tls, selectors.EVENT_READ)
        sel.register(up, selectors.EVENT_READ)
        client_open = True
        try:
            while not self._stop.is_set():
                buffered = client_open and tls.pending() > 0
                ready = [k.fileobj for k, _ in
                         sel.select(0 if buffered else self.timeout)]
                if not ready and not buffered:
                    return                          # idle past the timeout
                if client_open and (tls in ready or buffered):
                    try:
                        data = tls.recv(65536)
                    except ssl.SSLWantReadError:
                        data = None                 # a partial record
                    if data == b"":
                        client_open = False
                        sel.unregister(tls)
                        up.shutdown(socket.SHUT_WR)
                    elif data:
                        up.sendall(data)
                if up in ready:
                    data = up.recv(65536)
                    if not data:
                        return
                    tls.sendall(data)
        finally:
            sel.close()


def adapt_haproxy_cfg(name, port, sock, servers, crt=None, check_port=None):
    """conf/NAME with the test's bind port (on 127.0.0.1), stats socket,
    servers (`server` lines replacing the file's), for a TLS bind, crt, and
    the hosts' status port its health checks ask (check_port); no syslog,
    and a maxconn this machine's descriptor limit allows."""
    text = (REPO / "conf" / name).read_text()
    text = re.sub(r"(?m)^\s*log /dev/log.*\n", "", text)
    # two descriptors per connection: stay under this machine's limit
    text = re.sub(r"(?m)^(\s*maxconn) \d+", r"\1 1000", text)
    text = re.sub(r"(?m)^(\s*stats socket) \S+", r"\1 %s" % sock, text)
    text = re.sub(r"(?m)^(\s*bind) \S+", r"\1 127.0.0.1:%d" % port, text)
    if crt is not None:
        text, n = re.subn(r"(?m)^(\s*bind .* crt) \S+", r"\1 %s" % crt, text)
        assert n == 1, "no `bind ... crt FILE` line in conf/%s" % name
    if check_port is not None:
        text, n = re.subn(r"(?m)^(\s*default-server .*\bcheck port) \d+",
                          r"\g<1> %d" % check_port, text)
        assert n == 1, "no `default-server check port N` line in conf/%s" % name
    text = re.sub(r"(?m)^\s*server .*\n", "", text)
    return text.rstrip("\n") + "\n" + servers


def haproxy_stat_rows(sock):
    """HAProxy's "show stat" CSV rows of its servers (not frontends or
    backends), in the order of their names; [] while it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"show stat\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
    except OSError:
        return []
    rows = [ln.split(",") for ln in out.decode().splitlines()
            if ln and not ln.startswith("#")]
    rows = [r for r in rows if len(r) > STAT_STATUS and
            r[1] not in ("FRONTEND", "BACKEND")]
    return sorted(rows, key=lambda r: r[1])


def haproxy_status(sock):
    """The servers' states ("UP", "DOWN", ...), in the order of their names."""
    return [r[STAT_STATUS].split()[0] for r in haproxy_stat_rows(sock)]
