"""hftp mirror: make a local directory hold the server's files.

rsync's quick check without modification times (HFTP has neither times nor
checksums): a listed file is fetched when it is missing locally or its size
differs.  Files are fetched in parallel, one connection per worker thread,
each into NAME.hftp-part and renamed when complete; an interrupted mirror
continues its partial files the next time.  With delete, local regular
files that the server no longer lists are removed.
"""

import os
import queue
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from .client import Client
from .errors import HFTPError, ProtocolError
from .progress import human_bytes, human_duration
from .transfer import (
    DEFAULT_CONNECTIONS, PART_SUFFIX, STATE_SUFFIX, WAIT_TICK, Cancelled,
    FileDownload, LocalIOError, Session, Target, TransferError,
)

NEW = "new"
CHANGED = "changed"
UNCHANGED = "unchanged"


@dataclass
class MirrorResult:
    listed: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: List[Tuple[str, BaseException]] = field(default_factory=list)

    def summary(self, address: str, directory: str) -> str:
        text = ("mirror %s -> %s: %d listed, %d new, %d changed, "
                "%d unchanged, %d deleted, %s in %s"
                % (address, directory, self.listed, self.new, self.changed,
                   self.unchanged, self.deleted, human_bytes(self.bytes),
                   human_duration(self.seconds)))
        if self.errors:
            text += ", %d failed" % len(self.errors)
        return text


def _local_size(path: str) -> Optional[int]:
    """Size of a regular file at path; None when there is none; raises
    LocalIOError for something in the way that is not a regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LocalIOError("%s: %s" % (path, e.strerror)) from e
    if not stat.S_ISREG(st.st_mode):
        raise LocalIOError("%s: exists and is not a regular file" % path)
    return st.st_size


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and \
        "\0" not in name


class Mirror:
    def __init__(self, session: Session, directory: str, delete: bool,
                 jobs: Optional[int]) -> None:
        self.session = session
        self.directory = directory
        self.delete = delete
        self.jobs = max(1, jobs or DEFAULT_CONNECTIONS)
        self.result = MirrorResult()
        self._lock = threading.Lock()
        self._todo: "queue.Queue[Tuple[str, int, str]]" = queue.Queue()

    def run(self) -> MirrorResult:
        start = time.monotonic()
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise LocalIOError("%s: %s" % (self.directory, e.strerror)) from e
        listed = self._plan()
        self._fetch_all()
        if self.delete:
            self._delete_unlisted(listed)
        self.result.seconds = time.monotonic() - start
        return self.result

    def _plan(self) -> List[str]:
        """Lists the server and queues what differs (one connection)."""
        session = self.session

        def listing() -> Tuple[List[str], Dict[str, int]]:
            c = session.connect()
            try:
                names = [n for n in c.listing() if _safe_name(n)]
                sizes: Dict[str, int] = {}
                for n in names:
                    try:
                        sizes[n] = c.metadata(n)
                    except HFTPError as e:
                        if e.fatal:
                            raise   # else: gone since the listing
            finally:
                session.release(c)
            return names, sizes
        names, sizes = session.retrying("listing from %s" % session.address,
                                        listing)
        self.result.listed = len(names)
        progress = session.progress
        for name in names:
            if name not in sizes:
                continue                # gone between listing and metadata
            try:
                local = _local_size(os.path.join(self.directory, name))
            except LocalIOError as e:
                self.result.errors.append((name, e))
                continue
            if local == sizes[name]:
                self.result.unchanged += 1
                continue
            kind = NEW if local is None else CHANGED
            self._todo.put((name, sizes[name], kind))
            progress.files_total += 1
        return names

    def _fetch_all(self) -> None:
        workers = [threading.Thread(target=self._worker, daemon=True,
                                    name="hftp-mirror-%d" % i)
                   for i in range(min(self.jobs, self._todo.qsize()))]
        progress = self.session.progress
        try:
            for t in workers:
                t.start()
            while True:
                alive = [t for t in workers if t.is_alive()]
                if not alive:
                    break
                alive[0].join(WAIT_TICK)
                progress.tick()
        except BaseException:
            self.session.cancel()
            for t in workers:
                t.join()
            progress.finish()
            raise
        progress.finish()
        if self.session.stop.is_set():
            raise Cancelled()

    def _worker(self) -> None:
        session = self.session
        client: Optional[Client] = None
        while not session.stop.is_set():
            try:
                name, size, kind = self._todo.get_nowait()
            except queue.Empty:
                break
            target = Target("file", os.path.join(self.directory, name))
            # A mirror always continues a partial file, and starts it over
            # when the server's size is no longer the one it had.
            opts = replace(session.opts, resume=True, restart_changed=True)
            dl = FileDownload(session, name, target, client=client,
                              size=size, opts=opts)
            try:
                dl.run(threaded=False)
            except Cancelled:
                break
            except (HFTPError, ProtocolError, TransferError) as e:
                with self._lock:
                    self.result.errors.append((name, e))
                client = None
                continue
            except BaseException as e:
                with self._lock:
                    self.result.errors.append((name, e))
                session.cancel()
                break
            client = dl.take_spare_client()
            with self._lock:
                self.result.bytes += size - dl.resumed
                if kind == NEW:
                    self.result.new += 1
                else:
                    self.result.changed += 1
                session.progress.files_done += 1
            if session.progress.enabled:
                session.progress.message("%-9s %s (%s)"
                                         % (kind, name, human_bytes(size)))
        if client is not None:
            session.release(client)

    def _delete_unlisted(self, listed: List[str]) -> None:
        keep = set(listed)
        for name in keep.copy():
            keep.add(name + PART_SUFFIX)
            keep.add(name + STATE_SUFFIX)
        try:
            entries = os.listdir(self.directory)
        except OSError as e:
            raise LocalIOError("%s: %s" % (self.directory, e.strerror)) from e
        for name in sorted(entries):
            if name in keep:
                continue
            path = os.path.join(self.directory, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                os.unlink(path)
            except OSError as e:
                self.result.errors.append(
                    (name, LocalIOError("%s: %s" % (path, e.strerror))))
                continue
            self.result.deleted += 1
            self.session.log("deleted %s" % path)
