"""The HFTP client: one TCP connection, one request at a time.

Slices are streamed: iter_slice() yields the body in chunks and never holds a
whole slice.  The three framings of HFTP.md are understood:

* raw        ``Content-Length: N\\r\\n\\r\\n`` + N bytes (asked per call);
* base64     one base64 line, decoded incrementally in 4-character groups;
* fragments  ``LEN SP DATA\\r\\n`` ... ``0 \\r\\n`` (legacy servers).

For the non-raw form the framing is told apart by the first body bytes: a
fragment starts with digits followed by a space, and base64 has no space.
"""

import base64
import binascii
import os
import re
import socket

from .errors import (
    ConnectionClosedError, HFTPError, ProtocolError, error_for,
)

DEFAULT_PORT = 19500
EOL = b"\r\n"

_STATUS_RE = re.compile(rb"\A(\d{1,3}) (.*)\Z", re.S)
_CONTENT_LENGTH_RE = re.compile(rb"\AContent-Length: (0|[1-9][0-9]*)\Z")
_DIGITS = frozenset(b"0123456789")
_B64_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

_RECV_SIZE = 256 * 1024


def _arg(value):
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


def _int_or_none(value):
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

    def __init__(self, host="127.0.0.1", port=DEFAULT_PORT, timeout=30,
                 connect=True):
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self._sock = None
        self._buf = bytearray()
        self._eof = False
        self._busy = False      # a slice generator is still streaming
        self.closed = True
        if connect:
            self.connect()

    # -- connection ---------------------------------------------------------

    def connect(self):
        if not self.closed:
            raise RuntimeError("already connected")
        sock = socket.create_connection((self.host, self.port),
                                        timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._sock = sock
        self._buf = bytearray()
        self._eof = False
        self._busy = False
        self.closed = False
        return self

    def close(self):
        """Closes the socket without sending quit."""
        self.closed = True
        self._busy = False
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def fileno(self):
        return self._sock.fileno() if self._sock is not None else -1

    @property
    def sock(self):
        """The underlying socket (for tests: shutdown, settimeout, ...)."""
        return self._sock

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.closed and not self._busy:
            try:
                self.quit()
            except (OSError, HFTPError, ProtocolError):
                pass
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<hftp.Client %s port %d %s>" % (self.host, self.port, state)

    # -- low level: bytes in, bytes out -------------------------------------

    def send_raw(self, data):
        """Sends bytes as they are."""
        if self._sock is None:
            raise ConnectionClosedError("client is closed")
        self._sock.sendall(bytes(data))

    def _fill(self):
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
        self._buf += data
        return True

    def _read_some(self, limit):
        """Up to limit bytes (at least one), from the buffer or one recv."""
        if not self._buf and not self._fill():
            raise ConnectionClosedError("connection closed by the server")
        n = min(limit, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_exact(self, n):
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

    def read_line(self, limit=1 << 20):
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
                raise ConnectionClosedError(
                    "connection closed in the middle of a line: %r"
                    % bytes(self._buf)[:200])

    def read_status(self):
        """Reads a status line; returns (code, text) and raises nothing for
        non-zero codes."""
        line = self.read_line(limit=4096)
        m = _STATUS_RE.match(line)
        if not m:
            raise ProtocolError("bad status line: %r" % line)
        try:
            text = m.group(2).decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("status text is not ASCII: %r" % line)
        return int(m.group(1)), text

    def read_all(self):
        """Everything until the server closes (buffered bytes included)."""
        while self._fill():
            pass
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def read_at_most(self, n):
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

    def at_eof(self):
        """True if the server has closed and no unread bytes remain (waits up
        to the socket timeout for either to happen)."""
        if self._buf:
            return False
        return not self._fill()

    def pending(self):
        """Bytes received but not consumed yet."""
        return bytes(self._buf)

    # -- requests -----------------------------------------------------------

    def _check_ready(self):
        if self.closed:
            raise ConnectionClosedError("client is closed")
        if self._busy:
            raise RuntimeError("a slice is still being streamed on this "
                               "connection; consume or close it first")

    def request(self, *elements):
        """Sends one request line built from elements; reads and checks the
        status.  Returns nothing: the caller reads the body."""
        self._check_ready()
        line = b" ".join(_arg(e) for e in elements) + EOL
        try:
            self.send_raw(line)
            self._expect_ok()
        except (ProtocolError, OSError):
            self.close()
            raise

    def _expect_ok(self):
        code, text = self.read_status()
        if code != 0:
            err = error_for(code, text)
            if err.fatal:
                self.close()
            raise err
        if text != "OK":
            raise ProtocolError("status 0 with text %r" % text)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except (ProtocolError, OSError):
            self.close()
            raise

    def _read_lines_until_empty(self):
        out = []
        while True:
            line = self.read_line(limit=64 * 1024)
            if not line:
                return out
            try:
                out.append(line.decode("ascii"))
            except UnicodeDecodeError:
                raise ProtocolError("non-ASCII line: %r" % line[:200])

    def listing(self):
        """get_file_listing -> list of names, in the server's order."""
        self.request("get_file_listing")
        return self._guard(self._read_lines_until_empty)

    def help(self):
        """help -> list of command names."""
        self.request("help")
        return self._guard(self._read_lines_until_empty)

    def metadata(self, name):
        """get_metadata NAME -> size in bytes."""
        self.request("get_metadata", name)

        def body():
            line = self.read_line(limit=64)
            if not line or not all(c in _DIGITS for c in line):
                raise ProtocolError("bad metadata size line: %r" % line)
            return int(line)
        return self._guard(body)

    def quit(self):
        """quit: the server answers 0 OK and closes; so does the client."""
        try:
            self.request("quit")
        finally:
            self.close()

    def slice(self, name, offset, size, raw=False):
        """get_slice -> the bytes (the whole slice in memory)."""
        return b"".join(self.iter_slice(name, offset, size, raw=raw))

    def iter_slice(self, name, offset, size, raw=False, chunk_size=64 * 1024):
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

    def download(self, name, dest, chunk=4 * 1024 * 1024, raw=False):
        """Fetches the whole file NAME into the path dest (or a binary file
        object) with get_metadata then get_slice of chunk bytes at a time.
        Returns the size."""
        size = self.metadata(name)
        if hasattr(dest, "write"):
            self._download_to(dest, name, size, chunk, raw)
            return size
        tmp = "%s.part%d" % (os.fspath(dest), os.getpid())
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

    def _download_to(self, f, name, size, chunk, raw):
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

    def _raw_body(self, expected, chunk_size):
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
        remaining = length
        while remaining:
            piece = self._read_some(min(remaining, chunk_size))
            remaining -= len(piece)
            yield piece

    def _framed_body(self, expected, chunk_size):
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

    def _base64_body(self, expected, chunk_size):
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

    def _fragment_len(self):
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

    def _fragments_body(self, expected, chunk_size):
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


__all__ = ["Client", "DEFAULT_PORT", "HFTPError"]
