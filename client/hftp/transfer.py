"""Downloads to local files: where the bytes go, segmented parallel fetch,
resume state, retries with back-off and the rate limit.

A download into a regular file goes to DEST.hftp-part, pre-sized to the
file's size, with each of N segments written at its offset by its own
connection; DEST.hftp-state (JSON) records the segments and how far each
got, so an interrupted download continues where it stopped (-c).  Only a
complete download is renamed over DEST.  A destination that exists and is
not a regular file (a device, a FIFO) and stdout are written in place, in
order, over one connection.

The state file never claims a byte that is not in the part file: a
segment's count grows only after pwrite() has returned.
"""

import json
import os
import ssl
import stat
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Set, TypeVar

from .client import FRAMING_AUTO, RAW_RECV_SIZE, Client, RequestLog
from .errors import ConnectionClosedError, HFTPError, ProtocolError
from .progress import Progress

PART_SUFFIX = ".hftp-part"
STATE_SUFFIX = ".hftp-state"
STATE_VERSION = 1

DEFAULT_CONNECTIONS = 4
# A file is cut in segments of at least this size: a smaller file is
# fetched over fewer connections (one below 2 x SEGMENT_MIN).
SEGMENT_MIN = 4 * 1024 * 1024
DEFAULT_CHUNK = 16 * 1024 * 1024     # bytes per get_slice request
DEFAULT_RETRIES = 5
BACKOFF_FIRST = 0.25                  # seconds before the first retry
BACKOFF_MAX = 8.0                     # ... doubling up to this
STATE_SAVE_INTERVAL = 0.5             # seconds between state file writes
WAIT_TICK = 0.1                       # main loop: progress and state
# With a rate limit, bytes are received in pieces this small so that the
# limit is smooth.
LIMITED_RECV_SIZE = 64 * 1024


class TransferError(Exception):
    """A download failed for a reason that is not an HFTP status."""


class LocalIOError(TransferError):
    """Reading or writing a local file failed."""


class NetworkError(TransferError):
    """The server could not be reached, or the connection kept failing."""


class ChangedSizeError(TransferError):
    """The file's size on the server is not what it was when the download
    (or the partial download being continued) started."""


class AlreadyExists(TransferError):
    """--no-clobber and the destination exists."""


class OutputClosed(Exception):
    """The reader of stdout went away (hftp cat | head): not an error, but
    the download stops.  Not an OSError, so that it is never retried."""


class Cancelled(Exception):
    """The download was stopped (Ctrl-C, or another part failed)."""


_T = TypeVar("_T")


@dataclass
class Options:
    host: str
    port: int
    timeout: Optional[float] = 30.0
    framing: str = FRAMING_AUTO
    connections: Optional[int] = None     # None: DEFAULT_CONNECTIONS
    retries: int = DEFAULT_RETRIES
    chunk: int = DEFAULT_CHUNK
    limit_rate: Optional[float] = None    # bytes per second, all connections
    resume: bool = False
    no_clobber: bool = False
    # With resume: a partial download of another size is started over
    # (mirror) instead of being an error (get -c).
    restart_changed: bool = False
    verbose: bool = False
    # TLS (a verifying context, made once for every connection) and the
    # name the server's certificate must hold (default: host).
    tls: Optional[ssl.SSLContext] = None
    tls_name: Optional[str] = None


class RateLimit:
    """A shared budget of bytes per second (a virtual clock: each piece
    reserves len/rate seconds; a thread sleeps until its reservation)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def delay_for(self, n: int) -> float:
        now = time.monotonic()
        with self._lock:
            start = max(self._next, now)
            self._next = start + n / self.rate
            return self._next - now


class Session:
    """What every download of one command shares: options, the progress
    line, the rate limit, and the stop switch with the connections it must
    break to stop promptly."""

    def __init__(self, opts: Options, progress: Progress) -> None:
        self.opts = opts
        self.progress = progress
        self.limit = (RateLimit(opts.limit_rate) if opts.limit_rate else None)
        self.stop = threading.Event()
        self._clients: Set[Client] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        host = "[%s]" % self.opts.host if ":" in self.opts.host else \
            self.opts.host
        return "%s:%d" % (host, self.opts.port)

    def log(self, text: str) -> None:
        if self.opts.verbose:
            self.progress.message(text)

    def connect(self) -> Client:
        if self.stop.is_set():
            raise Cancelled()
        request_log: Optional[RequestLog] = (
            self.progress.message if self.opts.verbose else None)
        c = Client(self.opts.host, self.opts.port, timeout=self.opts.timeout,
                   framing=self.opts.framing, log=request_log,
                   tls=self.opts.tls or False, tls_name=self.opts.tls_name)
        with self._lock:
            self._clients.add(c)
        if self.stop.is_set():
            self.release(c, polite=False)
            raise Cancelled()
        return c

    def release(self, c: Client, polite: bool = True) -> None:
        """Closes a connection (with quit when it is idle and polite)."""
        with self._lock:
            self._clients.discard(c)
        if polite and not c.closed:
            try:
                c.quit()
            except (OSError, HFTPError, ProtocolError):
                pass
        c.close()

    def cancel(self) -> None:
        """Stops every transfer: the threads see the switch, and the ones
        blocked in recv() see their socket shut down."""
        self.stop.set()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            sock = c.sock
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Cancelled()

    def retrying(self, what: str, fn: Callable[[], _T]) -> _T:
        """fn() retried on transient failures with capped exponential
        back-off (opts.retries times)."""
        failures = 0
        while True:
            try:
                return fn()
            except (OSError, ConnectionClosedError) as e:
                if self.stop.is_set():
                    raise Cancelled()
                failures += 1
                self.back_off(what, e, failures)

    def back_off(self, what: str, err: BaseException, failures: int) -> None:
        """Sleeps before retry number `failures`, or raises NetworkError
        when the retries are spent."""
        if failures > self.opts.retries:
            raise NetworkError("%s: %s (after %d retries)"
                               % (self.address, describe_network_error(err),
                                  self.opts.retries)) from err
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
        self.log("%s: %s; retry %d of %d in %.2g s"
                 % (what, describe_network_error(err), failures,
                    self.opts.retries, delay))
        self.sleep(delay)


def describe_network_error(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionClosedError):
        return str(err)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err) or type(err).__name__


# -- destinations -------------------------------------------------------------

STDOUT = "-"


@dataclass
class Target:
    """Where a download goes.  kind: "stdout", "inplace" (an existing
    non-regular file: written in order, never replaced) or "file" (a
    regular file, replaced atomically when the download completes)."""
    kind: str
    path: str = ""

    @property
    def part(self) -> str:
        return self.path + PART_SUFFIX

    @property
    def state(self) -> str:
        return self.path + STATE_SUFFIX


def resolve_target(name: str, output: Optional[str]) -> Target:
    """The Target for `get NAME [-o OUTPUT]`.  Raises LocalIOError for an
    output that cannot work (a missing directory), before any transfer."""
    if output == STDOUT:
        return Target("stdout")
    base = os.path.basename(name)
    if not base or base in (".", ".."):
        raise LocalIOError("%s: not a file name to save as; use -o" % name)
    path = output if output else base
    if os.path.isdir(path):
        path = os.path.join(path, base)
    elif output and output.endswith(os.sep):
        raise LocalIOError("%s: no such directory" % output)
    if os.path.islink(path):
        path = os.path.realpath(path)   # write through the link
    try:
        mode: Optional[int] = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise LocalIOError("%s: %s" % (path, e.strerror)) from e
    if mode is not None and stat.S_ISDIR(mode):
        raise LocalIOError("%s: is a directory" % path)
    if mode is not None and not stat.S_ISREG(mode):
        return Target("inplace", path)
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise LocalIOError("%s: no such directory" % parent)
    return Target("file", path)


# -- segments and their state -------------------------------------------------

@dataclass
class Segment:
    start: int
    end: int
    done: int = 0                      # bytes written from start on

    @property
    def pos(self) -> int:
        return self.start + self.done

    @property
    def remaining(self) -> int:
        return self.end - self.start - self.done


def plan_segments(size: int, connections: Optional[int]) -> List[Segment]:
    """Cuts [0, size) into equal segments, at most `connections` of them
    and none under SEGMENT_MIN (one for a small file)."""
    want = DEFAULT_CONNECTIONS if connections is None else connections
    n = max(1, min(want, size // SEGMENT_MIN))
    step = size // n
    bounds = [i * step for i in range(n)] + [size]
    return [Segment(bounds[i], bounds[i + 1]) for i in range(n)]


def save_state(path: str, name: str, server: str, size: int,
               segments: List[Segment]) -> None:
    doc = {"version": STATE_VERSION, "name": name, "server": server,
           "size": size,
           "segments": [[s.start, s.end, s.done] for s in segments]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    os.replace(tmp, path)


def load_state(path: str, name: str) -> Optional["tuple[int, List[Segment]]"]:
    """(size at start, segments) from a state file, or None when there is
    none or it does not describe NAME (then the download starts over)."""
    try:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("version") != STATE_VERSION or doc.get("name") != name:
            return None
        size = int(doc["size"])
        segs = [Segment(int(a), int(b), int(d)) for a, b, d in doc["segments"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    pos = 0
    for s in segs:                      # they must tile [0, size)
        if s.start != pos or s.end < s.start or not 0 <= s.done <= s.end - s.start:
            return None
        pos = s.end
    if pos != size or not segs:
        return None
    return size, segs


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- one file -----------------------------------------------------------------

class FileDownload:
    """Downloads the server's file NAME into a Target.

    run() returns the size.  It raises HFTPError (the server's answer),
    ProtocolError, NetworkError, LocalIOError, ChangedSizeError, Cancelled
    or OutputClosed (stdout's reader left)."""

    def __init__(self, session: Session, name: str, target: Target,
                 client: Optional[Client] = None,
                 size: Optional[int] = None,
                 opts: Optional[Options] = None) -> None:
        self.session = session
        self.opts = opts if opts is not None else session.opts
        self.name = name
        self.target = target
        self.size = size
        self.segments: List[Segment] = []
        self.resumed = 0                   # bytes found done at start
        self._client = client              # a connection to start with
        self._fd = -1
        self._errors: List[BaseException] = []
        self._lock = threading.Lock()
        self._state_saved_at = 0.0
        self._threaded = False

    # -- the steps ---------------------------------------------------------

    def run(self, threaded: bool = True) -> int:
        """threaded: segments run in threads while this thread draws the
        progress line and saves the state (a command's main thread);
        otherwise they run here one after the other (a mirror worker)."""
        self._threaded = threaded
        if self.size is None:
            self.size = self._metadata()
        size = self.size
        if self.target.kind == "file":
            self._open_part(size)
        else:
            self._open_in_place()
            self.segments = [Segment(0, size)]
        try:
            self.session.progress.add_total(size)
            self.session.progress.add(self.resumed)
            self.session.progress.restart_clock()
            if threaded:
                self._run_threads()
            else:
                for seg in self.segments:
                    self._fetch_segment(seg)
        except BaseException:
            self._close_fd()
            self._save_state(force=True)
            raise
        self._close_fd()
        if self.target.kind == "file":
            self._check_size(size)
            self._install()
        if threaded:
            spare = self.take_spare_client()
            if spare is not None:
                self.session.release(spare)
        return size

    def take_spare_client(self) -> Optional[Client]:
        """A connection left idle by the download, for the caller to reuse
        or release."""
        with self._lock:
            c, self._client = self._client, None
        return c if c is not None and not c.closed else None

    def _metadata(self) -> int:
        def ask() -> int:
            if self._client is None or self._client.closed:
                self._client = self.session.connect()
            return self._client.metadata(self.name)
        return self.session.retrying(self.name, ask)

    def _open_part(self, size: int) -> None:
        t = self.target
        if self.opts.no_clobber and os.path.lexists(t.path):
            raise AlreadyExists("%s: exists, not overwritten (--no-clobber)"
                                % t.path)
        old = load_state(t.state, self.name) if self.opts.resume else None
        try:
            if old is not None and old[0] != size and \
                    self.opts.restart_changed:
                old = None
            if old is not None and os.path.isfile(t.part) and \
                    os.path.getsize(t.part) == old[0]:
                if old[0] != size:
                    raise ChangedSizeError(
                        "%s: the server's size is %d, the partial download "
                        "was of %d bytes; start over without -c"
                        % (self.name, size, old[0]))
                self.segments = old[1]
                self.resumed = sum(s.done for s in self.segments)
                self._fd = os.open(t.part, os.O_RDWR)
                self.session.log("%s: continuing at %d of %d bytes"
                                 % (self.name, self.resumed, size))
            else:
                self.segments = plan_segments(size, self.opts.connections)
                self._fd = os.open(t.part, os.O_RDWR | os.O_CREAT |
                                   os.O_TRUNC, 0o666)
                os.ftruncate(self._fd, size)
                self._save_state(force=True)
        except OSError as e:
            raise LocalIOError("%s: %s" % (e.filename or t.part,
                                           e.strerror)) from e

    def _open_in_place(self) -> None:
        if self.target.kind == "stdout":
            self._fd = 1
            return
        try:
            # No O_CREAT, no O_TRUNC: the node stays what it is.
            self._fd = os.open(self.target.path, os.O_WRONLY)
        except OSError as e:
            raise LocalIOError("%s: %s" % (self.target.path,
                                           e.strerror)) from e

    def _close_fd(self) -> None:
        if self._fd > 2:
            os.close(self._fd)
        self._fd = -1

    def _save_state(self, force: bool = False) -> None:
        if self.target.kind != "file" or not self.segments or \
                self.size is None:
            return
        now = time.monotonic()
        if not force and now - self._state_saved_at < STATE_SAVE_INTERVAL:
            return
        self._state_saved_at = now
        try:
            save_state(self.target.state, self.name, self.session.address,
                       self.size, self.segments)
        except OSError as e:
            raise LocalIOError("%s: %s" % (self.target.state,
                                           e.strerror)) from e

    def _check_size(self, size: int) -> None:
        """A file that changed size while it was fetched is a mix of two
        versions: an error, and nothing is installed."""
        now = self._metadata()
        if now != size:
            remove_quietly(self.target.part)
            remove_quietly(self.target.state)
            raise ChangedSizeError("%s: changed size during the download "
                                   "(%d bytes, now %d)"
                                   % (self.name, size, now))

    def _install(self) -> None:
        t = self.target
        try:
            if self.opts.no_clobber:
                os.link(t.part, t.path)     # fails if DEST appeared
                os.unlink(t.part)
            else:
                os.replace(t.part, t.path)
            remove_quietly(t.state)
        except OSError as e:
            raise LocalIOError("%s: %s" % (t.path, e.strerror)) from e

    # -- transfer ----------------------------------------------------------

    def _run_threads(self) -> None:
        todo = [s for s in self.segments if s.remaining]
        threads = [threading.Thread(target=self._thread_main, args=(s,),
                                    name="hftp-%d" % s.start, daemon=True)
                   for s in todo]
        try:
            for t in threads:
                t.start()
            while True:
                alive = [t for t in threads if t.is_alive()]
                if not alive:
                    break
                alive[0].join(WAIT_TICK)
                self.session.progress.tick()
                self._save_state()
        except BaseException:
            self.session.cancel()
            for t in threads:
                t.join()
            raise
        if self._errors:
            raise self._errors[0]

    def _thread_main(self, seg: Segment) -> None:
        try:
            self._fetch_segment(seg)
        except BaseException as e:      # handed to the main thread
            with self._lock:
                first = not self._errors
                if not isinstance(e, Cancelled) or first:
                    self._errors.append(e)
            if first:
                self.session.cancel()   # one failure stops the others

    def _take_client(self) -> Client:
        with self._lock:
            c, self._client = self._client, None
        if c is None or c.closed:
            c = self.session.connect()
        return c

    def _fetch_segment(self, seg: Segment) -> None:
        session = self.session
        max_recv = LIMITED_RECV_SIZE if session.limit else RAW_RECV_SIZE
        sink = self._sink_for(seg)
        failures = 0
        client: Optional[Client] = None
        try:
            while seg.remaining:
                if session.stop.is_set():
                    raise Cancelled()
                before = seg.done
                try:
                    if client is None or client.closed:
                        client = self._take_client()
                    n = min(self.opts.chunk, seg.remaining)
                    client.fetch_into(self.name, seg.pos, n, sink, max_recv)
                except (OSError, ConnectionClosedError) as e:
                    if session.stop.is_set():
                        raise Cancelled()
                    failures = 1 if seg.done > before else failures + 1
                    client = None
                    session.back_off("%s from %s" % (self.name,
                                                     session.address),
                                     e, failures)
                else:
                    failures = 0
                if not self._threaded:
                    self._save_state()
        finally:
            if client is not None:
                with self._lock:
                    keep = self._client is None and not client.closed
                    if keep:
                        self._client = client
                if not keep:
                    session.release(client)

    def _sink_for(self, seg: Segment) -> Callable[[int, memoryview], None]:
        fd = self._fd
        progress = self.session.progress
        limit = self.session.limit
        session = self.session
        in_order = self.target.kind != "file"
        where = self.target.path or "stdout"

        def sink(pos: int, data: memoryview) -> None:
            n = len(data)
            try:
                while data:
                    if in_order:
                        w = os.write(fd, data)
                    else:
                        w = os.pwrite(fd, data, pos)
                    data = data[w:]
                    pos += w
            except BrokenPipeError as e:
                if in_order:
                    raise OutputClosed() from e
                raise LocalIOError("%s: %s" % (where, e.strerror)) from e
            except OSError as e:
                raise LocalIOError("%s: %s" % (where, e.strerror)) from e
            seg.done += n
            progress.add(n)
            if limit is not None:
                session.sleep(limit.delay_for(n))
        return sink

