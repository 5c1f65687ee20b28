"""The HFTP client: one TCP connection, one request at a time.

Slices are streamed: iter_slice() yields the body in chunks and never holds a
whole slice.  The three framings of HFTP (docs/PROTOCOL.md) are understood:

* raw        ``Content-Length: N\\r\\n\\r\\n`` + N bytes (asked per call);
* base64     one base64 line, decoded incrementally in 4-character groups;
* fragments  ``LEN SP DATA\\r\\n`` ... ``0 \\r\\n`` (legacy servers).

For the non-raw form the framing is told apart by the first body bytes: a
fragment starts with digits followed by a space, and base64 has no space.

slice()/iter_slice() use the framing the caller asks for (base64 unless
raw=True).  fetch_into() uses the client's `framing`: "auto" asks help once
per connection (negotiate()) and uses raw when the server lists get_slice
there; servers older than the 2026 edition answer help with 200 and get
requests without raw.

tls= speaks HFTP inside TLS, as a TLS terminator in front of hftpd (HAProxy:
conf/haproxy-tls.cfg) expects: the server's certificate and host name are
verified, against the system's CA store or a cafile (tls_context()).
"""

import base64
import binascii
import os
import re
import socket
import ssl
import stat
from types import TracebackType
from typing import (
    IO, Callable, Iterator, List, Optional, Type, TypeVar, Union,
)

from .errors import (
    ConnectionClosedError, HFTPError, InvalidArguments, ProtocolError,
    TLSError, error_for,
)

DEFAULT_PORT = 19500
# hftp --tls's default: the port conf/haproxy-tls.cfg terminates TLS on.
DEFAULT_TLS_PORT = 19501
EOL = b"\r\n"

_STATUS_RE = re.compile(rb"\A(\d{1,3}) (.*)\Z", re.S)
_CONTENT_LENGTH_RE = re.compile(rb"\AContent-Length: (0|[1-9][0-9]*)\Z")
_DIGITS = frozenset(b"0123456789")
_B64_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

_RECV_SIZE = 256 * 1024

# Bytes a raw slice body is received into at a time (one buffer per client).
RAW_RECV_SIZE = 1024 * 1024

# Framings a client can ask for: raw, or the server's own (base64 for the
# base64 era and 2026 servers, fragments for the fragment era).
FRAMING_AUTO = "auto"
FRAMING_RAW = "raw"
FRAMING_BASE64 = "base64"
FRAMINGS = (FRAMING_AUTO, FRAMING_RAW, FRAMING_BASE64)

# What a request element may be: written in decimal, or sent as it is.
Arg = Union[int, str, bytes, bytearray]
# Where slice bytes go: called with (offset in the file, bytes).
Sink = Callable[[int, memoryview], None]
# Told each request line sent (for -v).
RequestLog = Callable[[str], None]

_T = TypeVar("_T")

# The first bytes of a TLS record: alert (21) or handshake (22), version 3.x.
# A plain client that sees them is talking to a TLS port.
_TLS_RECORD_STARTS = (b"\x15\x03", b"\x16\x03")


def tls_context(cafile: Optional[str] = None) -> ssl.SSLContext:
    """A client TLS context that verifies the server's certificate and its
    host name: against the system's CA store, or, with cafile (PEM), against
    that file's CAs only.  Raises OSError when cafile cannot be read and
    ssl.SSLError when it holds no certificate."""
    return ssl.create_default_context(cafile=cafile)


def _tls_failure(err: BaseException, name: str) -> str:
    """One line saying why the TLS handshake with name failed."""
    hint = "is it a TLS port?"
    if isinstance(err, ssl.SSLCertVerificationError):
        why = (err.verify_message or err.reason or "not verified").rstrip(".")
        if "mismatch" in why.lower():
            why += " (--tls-name gives the name the certificate holds)"
        elif "issuer" in why or "self-signed" in why or "self signed" in why:
            why += " (--cafile names the CA that signed it)"
        return "TLS: certificate not verified for %s: %s" % (name, why)
    if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                        ConnectionResetError, BrokenPipeError)):
        why = "the server closed the connection"
    elif isinstance(err, (socket.timeout, TimeoutError)):
        why = "no answer in time"
    elif isinstance(err, ssl.SSLError) and \
            err.reason == "WRONG_VERSION_NUMBER":
        why = "the server does not speak TLS"
    elif isinstance(err, ssl.SSLError):
        why = (err.reason or str(err)).lower().replace("_", " ")
        hint = "the server's TLS settings do not fit this client's"
    elif isinstance(err, OSError) and err.strerror:
        why = err.strerror.lower()
    else:
        why = str(err) or type(err).__name__
    return "TLS handshake failed: %s (%s)" % (why, hint)


def _arg(value: object) -> bytes:
    """A request element as bytes.  Integers are written in decimal; str and
    bytes go as they are (so tests can send malformed arguments)."""
    if isinstance(value, bool):
        raise TypeError("bool is not an HFTP argument")
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError("HFTP argument must be int, str or bytes, not %r"
                        % type(value).__name__)
    if b"\n" in value:
        raise ValueError("an HFTP argument cannot contain a line feed")
    return bytes(value)


def _int_or_none(value: object) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


class Client:
    """A connection to an HFTP server.

    Every method that sends a request raises HFTPError (or its subclass for
    the code, e.g. FileNotFound for 202) when the status is not 0.  After a
    fatal 1xx status, a ProtocolError or a broken connection the client is
    closed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout: Optional[float] = 30, connect: bool = True,
                 framing: str = FRAMING_AUTO,
                 log: Optional[RequestLog] = None,
                 tls: Union[bool, ssl.SSLContext] = False,
                 tls_name: Optional[str] = None) -> None:
        """tls: True speaks TLS with tls_context() (the system's CAs); an
        SSLContext is used as given (share one between clients: making one
        reads the CA store).  tls_name: the name the server's certificate
        must hold (default: host)."""
        if framing not in FRAMINGS:
            raise ValueError("framing must be one of %s" % ", ".join(FRAMINGS))
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self.framing = framing  # auto until negotiate() has run
        self.log = log
        self.tls: Optional[ssl.SSLContext] = (
            tls if isinstance(tls, ssl.SSLContext)
            else tls_context() if tls else None)
        self.tls_name = tls_name
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray()
        self._eof = False
        self._heard = False     # a byte has arrived on this connection
        self._busy = False      # a slice generator is still streaming
        self._recv_buf: Optional[bytearray] = None
        self._framing_guessed = False   # negotiate() chose it
        self.closed = True
        if connect:
            self.connect()

    # -- connection ---------------------------------------------------------

    def connect(self) -> "Client":
        if not self.closed:
            raise RuntimeError("already connected")
        sock = socket.create_connection((self.host, self.port),
                                        timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.tls is not None:
            sock = self._start_tls(self.tls, sock)
        self._sock = sock
        self._buf = bytearray()
        self._eof = False
        self._heard = False
        self._busy = False
        self.closed = False
        return self

    def _start_tls(self, ctx: ssl.SSLContext,
                   sock: socket.socket) -> ssl.SSLSocket:
        """The TLS handshake, within the socket's timeout.  Any failure is a
        TLSError (never retried: a certificate or a port does not change
        between tries), and the socket is closed."""
        name = self.tls_name or self.host
        try:
            tsock = ctx.wrap_socket(sock, server_hostname=name)
        except (OSError, ValueError) as e:
            sock.close()
            raise TLSError(_tls_failure(e, name)) from e
        if self.log is not None:
            checked = ("certificate verified for %s" % name
                       if ctx.verify_mode != ssl.CERT_NONE
                       else "certificate NOT verified (the caller's context)")
            self.log("%s: %s, %s, %s" % (self.address, tsock.version(),
                                         (tsock.cipher() or ("?",))[0],
                                         checked))
        return tsock

    def close(self) -> None:
        """Closes the socket without sending quit."""
        self.closed = True
        self._busy = False
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    @property
    def sock(self) -> Optional[socket.socket]:
        """The underlying socket (for tests: shutdown, settimeout, ...)."""
        return self._sock

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if not self.closed and not self._busy:
            try:
                self.quit()
            except (OSError, HFTPError, ProtocolError):
                pass
        self.close()

    @property
    def address(self) -> str:
        """HOST:PORT as a user writes it ([V6]:PORT for IPv6)."""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (host, self.port)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return "<hftp.Client %s port %d %s>" % (self.host, self.port, state)

    # -- low level: bytes in, bytes out -------------------------------------

    def send_raw(self, data: Union[bytes, bytearray]) -> None:
        """Sends bytes as they are."""
        if self._sock is None:
            raise ConnectionClosedError("client is closed")
        self._sock.sendall(bytes(data))

    def _fill(self) -> bool:
        """Receives more bytes into the buffer; False at end of stream."""
        if self._eof:
            return False
        if self._sock is None:
            raise ConnectionClosedError("client is closed")
        try:
            data = self._sock.recv(_RECV_SIZE)
        except ConnectionResetError:
            data = b""
        if not data:
            self._eof = True
            return False
        self._heard = True
        self._buf += data
        return True

    def _closed_error(self, what: str) -> ProtocolError:
        """The error for a stream that ended where `what` was expected.  A
        plain client hints at TLS: a TLS port closes without a word (HAProxy)
        or answers with a TLS alert, which is no HFTP (not retried)."""
        if self.tls is None and not self._heard:
            return ConnectionClosedError(
                "the server closed the connection without answering (if "
                "the port is a TLS one, use --tls)")
        return self._tls_answer() or ConnectionClosedError(what)

    def _tls_answer(self, data: Optional[bytes] = None) -> Optional[
            ProtocolError]:
        """A ProtocolError if a plain client's input (data, else the
        buffer) starts with a TLS record."""
        head = bytes(self._buf[:2]) if data is None else data[:2]
        if self.tls is None and head in _TLS_RECORD_STARTS:
            return ProtocolError("the server answered in TLS: it is a TLS "
                                 "port (use --tls)")
        return None

    def _read_some(self, limit: int) -> bytes:
        """Up to limit bytes (at least one), from the buffer or one recv."""
        if not self._buf and not self._fill():
            raise self._closed_error("connection closed by the server")
        n = min(limit, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_exact(self, n: int) -> bytes:
        """Exactly n bytes; ConnectionClosedError if the stream ends first."""
        while len(self._buf) < n:
            if not self._fill():
                got = bytes(self._buf)
                raise ConnectionClosedError(
                    "connection closed after %d of %d bytes: %r"
                    % (len(got), n, got[:200]))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_line(self, limit: int = 1 << 20) -> bytes:
        """One line without its CR LF.  A LF without CR before it, a line
        longer than limit or the end of the stream is a ProtocolError."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i >= 0:
                if i == 0 or self._buf[i - 1] != 0x0D:
                    raise ProtocolError("line ends in a bare LF: %r"
                                        % bytes(self._buf[:i + 1])[:200])
                line = bytes(self._buf[:i - 1])
                del self._buf[:i + 1]
                return line
            if len(self._buf) > limit:
                raise ProtocolError("line longer than %d bytes" % limit)
            start = len(self._buf)
            if not self._fill():
                raise self._closed_error(
                    "connection closed in the middle of a line: %r"
                    % bytes(self._buf)[:200])

    def read_status(self) -> "tuple[int, str]":
        """Reads a status line; returns (code, text) and raises nothing for
        non-zero codes."""
        try:
            line = self.read_line(limit=4096)
        except ProtocolError as e:
            raise self._tls_answer() or e
        m = _STATUS_RE.match(line)
        if not m:
            raise self._tls_answer(line) or ProtocolError(
                "bad status line: %r" % line)
        try:
            text = m.group(2).decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("status text is not ASCII: %r" % line)
        return int(m.group(1)), text

    def read_all(self) -> bytes:
        """Everything until the server closes (buffered bytes included)."""
        while self._fill():
            pass
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def read_at_most(self, n: int) -> bytes:
        """Up to n bytes: returns fewer only when the stream ends or the
        socket timeout passes (tests use it to see what arrived in time)."""
        try:
            while len(self._buf) < n and self._fill():
                pass
        except socket.timeout:
            pass
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def at_eof(self) -> bool:
        """True if the server has closed and no unread bytes remain (waits up
        to the socket timeout for either to happen)."""
        if self._buf:
            return False
        return not self._fill()

    def pending(self) -> bytes:
        """Bytes received but not consumed yet."""
        return bytes(self._buf)

    # -- requests -----------------------------------------------------------

    def _check_ready(self) -> None:
        if self.closed:
            raise ConnectionClosedError("client is closed")
        if self._busy:
            raise RuntimeError("a slice is still being streamed on this "
                               "connection; consume or close it first")

    def request(self, *elements: Arg) -> None:
        """Sends one request line built from elements; reads and checks the
        status.  Returns nothing: the caller reads the body."""
        self._check_ready()
        line = b" ".join(_arg(e) for e in elements) + EOL
        if self.log is not None:
            self.log("%s: %s" % (self.address,
                                 line[:-2].decode("ascii", "replace")))
        try:
            self.send_raw(line)
            self._expect_ok()
        except (ProtocolError, OSError):
            self.close()
            raise

    def _expect_ok(self) -> None:
        code, text = self.read_status()
        if code != 0:
            err = error_for(code, text)
            if err.fatal:
                self.close()
            raise err
        if text != "OK":
            raise ProtocolError("status 0 with text %r" % text)

    def _guard(self, fn: Callable[..., _T], *args: object) -> _T:
        try:
            return fn(*args)
        except (ProtocolError, OSError):
            self.close()
            raise

    def _read_lines_until_empty(self) -> List[str]:
        out: List[str] = []
        while True:
            line = self.read_line(limit=64 * 1024)
            if not line:
                return out
            try:
                out.append(line.decode("ascii"))
            except UnicodeDecodeError:
                raise ProtocolError("non-ASCII line: %r" % line[:200])

    def listing(self) -> List[str]:
        """get_file_listing -> list of names, in the server's order."""
        self.request("get_file_listing")
        return self._guard(self._read_lines_until_empty)

    def help(self) -> List[str]:
        """help -> list of command names."""
        self.request("help")
        return self._guard(self._read_lines_until_empty)

    def metadata(self, name: Arg) -> int:
        """get_metadata NAME -> size in bytes."""
        self.request("get_metadata", name)

        def body() -> int:
            line = self.read_line(limit=64)
            if not line or not all(c in _DIGITS for c in line):
                raise ProtocolError("bad metadata size line: %r" % line)
            return int(line)
        return self._guard(body)

    def quit(self) -> None:
        """quit: the server answers 0 OK and closes; so does the client."""
        try:
            self.request("quit")
        finally:
            self.close()

    def slice(self, name: Arg, offset: Arg, size: Arg,
              raw: bool = False) -> bytes:
        """get_slice -> the bytes (the whole slice in memory)."""
        return b"".join(self.iter_slice(name, offset, size, raw=raw))

    def iter_slice(self, name: Arg, offset: Arg, size: Arg, raw: bool = False,
                   chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """get_slice as a generator of byte chunks (at most about chunk_size
        each).  The request is sent when iteration starts.  Closing the
        generator before its end closes the connection (the rest of the
        response would be left unread)."""
        elements = ["get_slice", name, offset, size]
        if raw:
            elements.append("raw")
        expected = _int_or_none(size)
        self.request(*elements)
        self._busy = True
        done = False
        try:
            if raw:
                body = self._raw_body(expected, chunk_size)
            else:
                body = self._framed_body(expected, chunk_size)
            for chunk in body:
                yield chunk
            done = True
        finally:
            self._busy = False
            if not done:
                self.close()

    def negotiate(self) -> str:
        """Settles framing "auto" once per connection: asks help, and uses
        raw slices when the server lists get_slice there (the 2026 edition);
        an older server answers help with 200 and gets requests without
        raw, answered in its own framing (base64 or fragments).  Returns the
        framing in force."""
        if self.framing != FRAMING_AUTO:
            return self.framing
        try:
            names = self.help()
        except HFTPError as e:
            if e.fatal:
                raise
            names = []
        self.framing = FRAMING_RAW if "get_slice" in names else FRAMING_BASE64
        self._framing_guessed = True
        return self.framing

    def fetch_into(self, name: Arg, offset: int, size: int, sink: Sink,
                   max_recv: int = RAW_RECV_SIZE) -> None:
        """get_slice NAME OFFSET SIZE in the negotiated framing, handing the
        bytes to sink(file offset, bytes) as they arrive.  The memoryview
        given to sink is only valid during the call.  If the transfer stops
        early (error, exception in sink) the connection is closed, and the
        caller knows from its sink how many bytes arrived."""
        framing = self.negotiate()
        if framing == FRAMING_RAW:
            try:
                self.request("get_slice", name, offset, size, "raw")
            except InvalidArguments:
                # A server that listed help but not raw slices: fall back.
                if not self._framing_guessed:
                    raise
                self.framing = FRAMING_BASE64
                self.fetch_into(name, offset, size, sink, max_recv)
                return
            self._busy = True
            done = False
            try:
                self._raw_into(size, offset, sink, max_recv)
                done = True
            finally:
                self._busy = False
                if not done:
                    self.close()
            return
        pos = offset
        for piece in self.iter_slice(name, offset, size, chunk_size=max_recv):
            sink(pos, memoryview(piece))
            pos += len(piece)

    def _raw_into(self, expected: int, pos: int, sink: Sink,
                  max_recv: int) -> None:
        length = self._raw_header(expected)
        remaining = length
        if self._buf:
            n = min(remaining, len(self._buf))
            sink(pos, memoryview(bytes(self._buf[:n])))
            del self._buf[:n]
            pos += n
            remaining -= n
        if not remaining:
            return
        sock = self._sock
        if sock is None:
            raise ConnectionClosedError("client is closed")
        if self._recv_buf is None:
            self._recv_buf = bytearray(RAW_RECV_SIZE)
        view = memoryview(self._recv_buf)
        step = max(1, min(max_recv, len(view)))
        while remaining:
            try:
                n = sock.recv_into(view[:min(remaining, step)])
            except ConnectionResetError:
                n = 0
            if n == 0:
                self._eof = True
                raise ConnectionClosedError(
                    "connection closed after %d of %d slice bytes"
                    % (length - remaining, length))
            sink(pos, view[:n])
            pos += n
            remaining -= n

    def download(self, name: Arg,
                 dest: Union[str, "os.PathLike[str]", IO[bytes]],
                 chunk: int = 4 * 1024 * 1024, raw: bool = False) -> int:
        """Fetches the whole file NAME into the path dest (or a binary file
        object) with get_metadata then get_slice of chunk bytes at a time.
        Returns the size."""
        size = self.metadata(name)
        if not isinstance(dest, (str, os.PathLike)):
            self._download_to(dest, name, size, chunk, raw)
            return size
        path = os.fspath(dest)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            # A device, FIFO or socket is written in place, never replaced.
            with open(os.open(path, os.O_WRONLY), "wb") as f:
                self._download_to(f, name, size, chunk, raw)
            return size
        tmp = "%s.part%d" % (path, os.getpid())
        try:
            with open(tmp, "wb") as f:
                self._download_to(f, name, size, chunk, raw)
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return size

    def _download_to(self, f: IO[bytes], name: Arg, size: int, chunk: int,
                     raw: bool) -> None:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        offset = 0
        while True:
            n = min(chunk, size - offset)
            for piece in self.iter_slice(name, offset, n, raw=raw):
                f.write(piece)
            offset += n
            if offset >= size:
                break

    # -- slice bodies -------------------------------------------------------

    def _raw_header(self, expected: Optional[int]) -> int:
        header = self.read_line(limit=256)
        m = _CONTENT_LENGTH_RE.match(header)
        if not m:
            raise ProtocolError("bad raw slice header: %r" % header)
        length = int(m.group(1))
        if expected is not None and length != expected:
            raise ProtocolError("Content-Length %d for a slice of %d"
                                % (length, expected))
        blank = self.read_line(limit=256)
        if blank:
            raise ProtocolError("raw slice header not followed by an empty "
                                "line: %r" % blank)
        return length

    def _raw_body(self, expected: Optional[int],
                  chunk_size: int) -> Iterator[bytes]:
        remaining = self._raw_header(expected)
        while remaining:
            piece = self._read_some(min(remaining, chunk_size))
            remaining -= len(piece)
            yield piece

    def _framed_body(self, expected: Optional[int],
                     chunk_size: int) -> Iterator[bytes]:
        # Tell base64 from fragments: digits followed by a space start a
        # fragment; anything else is a base64 line (possibly empty).
        i = 0
        while True:
            while i < len(self._buf) and self._buf[i] in _DIGITS:
                i += 1
            if i < len(self._buf):
                break
            if not self._fill():
                raise ConnectionClosedError("connection closed before the "
                                            "slice body")
        if i > 0 and self._buf[i] == 0x20:
            return self._fragments_body(expected, chunk_size)
        return self._base64_body(expected, chunk_size)

    def _base64_body(self, expected: Optional[int],
                     chunk_size: int) -> Iterator[bytes]:
        pending = bytearray()
        total = 0
        padded = False
        want = max(4, (chunk_size // 3) * 4)
        while True:
            if not self._buf and not self._fill():
                raise ConnectionClosedError("connection closed inside the "
                                            "base64 line")
            cr = self._buf.find(b"\r", 0, want)
            end = cr if cr >= 0 else min(len(self._buf), want)
            text = self._buf[:end]
            del self._buf[:end]
            if text:
                if padded:
                    raise ProtocolError("base64 continues after padding")
                pending += text
                k = len(pending) // 4 * 4
                if k:
                    group = bytes(pending[:k])
                    del pending[:k]
                    try:
                        out = base64.b64decode(group, validate=True)
                    except (binascii.Error, ValueError) as e:
                        raise ProtocolError("bad base64 (%s) near %r"
                                            % (e, group[:80]))
                    if b"=" in group:
                        padded = True
                    total += len(out)
                    if expected is not None and total > expected:
                        raise ProtocolError("base64 slice longer than %d"
                                            % expected)
                    if out:
                        yield out
            if cr >= 0:
                break
        if self.read_exact(2) != EOL:
            raise ProtocolError("base64 line not ended by CR LF")
        if pending:
            raise ProtocolError("base64 line length is not a multiple of 4 "
                                "(left over %r)" % bytes(pending))
        if expected is not None and total != expected:
            raise ProtocolError("base64 slice of %d bytes, expected %d"
                                % (total, expected))

    def _fragment_len(self) -> int:
        i = 0
        while True:
            j = self._buf.find(b" ", i)
            if j >= 0:
                break
            if len(self._buf) > 21:
                raise ProtocolError("bad fragment length: %r"
                                    % bytes(self._buf[:40]))
            i = len(self._buf)
            if not self._fill():
                raise ConnectionClosedError("connection closed inside a "
                                            "fragment length")
        token = bytes(self._buf[:j])
        del self._buf[:j + 1]
        if (not token or len(token) > 20 or
                not all(c in _DIGITS for c in token) or
                (len(token) > 1 and token[0] == 0x30)):
            raise ProtocolError("bad fragment length: %r" % token)
        return int(token)

    def _fragments_body(self, expected: Optional[int],
                        chunk_size: int) -> Iterator[bytes]:
        total = 0
        while True:
            n = self._fragment_len()
            if n == 0:
                if self.read_exact(2) != EOL:
                    raise ProtocolError("fragment terminator is not '0 \\r\\n'")
                break
            total += n
            if expected is not None and total > expected:
                raise ProtocolError("fragments longer than %d" % expected)
            remaining = n
            while remaining:
                piece = self._read_some(min(remaining, chunk_size))
                remaining -= len(piece)
                yield piece
            if self.read_exact(2) != EOL:
                raise ProtocolError("fragment not followed by CR LF")
        if expected is not None and total != expected:
            raise ProtocolError("fragments carry %d bytes, expected %d"
                                % (total, expected))


__all__ = ["Client", "DEFAULT_PORT", "DEFAULT_TLS_PORT", "HFTPError"]
