"""The progress line on stderr, and the messages (-v, retries) that share it.

Only the standard library: one line rewritten in place with a carriage
return, at most REFRESH_HZ times a second, and only when the stream is a
terminal and the user did not ask for -q.  Counters are updated from the
transfer threads; the line is drawn by whichever thread calls tick() (the
main thread's wait loop).
"""

import shutil
import sys
import threading
import time
from typing import Optional, TextIO

REFRESH_HZ = 10
MIN_REDRAW = 1.0 / REFRESH_HZ
# The rate shown is measured over about this many seconds.
RATE_WINDOW = 3.0
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in UNITS:
        if abs(n) < 1024 or unit == UNITS[-1]:
            if unit == "B":
                return "%d B" % n
            return "%.1f %s" % (n, unit)
        n /= 1024
    return "%d B" % n                   # not reached


def human_duration(seconds: float) -> str:
    """75 -> '1:15', 3725 -> '1:02:05'."""
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return "%d:%02d:%02d" % (h, m, s) if h else "%d:%02d" % (m, s)


class Progress:
    """Bytes done out of a total, drawn as one line when enabled.

    label: what is being fetched (a file name, or "mirror").  The total may
    grow (mirror adds files as it goes) and may start at a resumed count."""

    def __init__(self, enabled: bool, stream: Optional[TextIO] = None,
                 label: str = "") -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.label = label
        self.total = 0
        self.done = 0
        self.files_total = 0
        self.files_done = 0
        self._start = time.monotonic()
        self._samples = [(self._start, 0)]
        self._last_draw = 0.0
        self._drawn = False
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        """n more bytes arrived (any thread)."""
        with self._lock:
            self.done += n

    def add_total(self, n: int) -> None:
        """n more bytes to fetch (any thread)."""
        with self._lock:
            self.total += n

    def restart_clock(self) -> None:
        """Rates count from now: bytes done so far (resumed) are not news."""
        with self._lock:
            self._start = time.monotonic()
            self._samples = [(self._start, self.done)]

    def message(self, text: str) -> None:
        """A line of its own (a -v request log, a retry notice), printed
        above the progress line."""
        with self._lock:
            self._clear()
            self.stream.write("hftp: %s\n" % text)
            self.stream.flush()

    def tick(self, force: bool = False) -> None:
        """Redraws the line if enabled and at least 1/REFRESH_HZ s passed."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < MIN_REDRAW:
            return
        with self._lock:
            self._last_draw = now
            self._samples.append((now, self.done))
            while (len(self._samples) > 2 and
                   now - self._samples[1][0] > RATE_WINDOW):
                self._samples.pop(0)
            line = self._line(now)
            width = shutil.get_terminal_size((80, 24)).columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
            self.stream.flush()
            self._drawn = True

    def finish(self) -> None:
        """Draws the final state and ends the line."""
        if not self.enabled:
            return
        self.tick(force=True)
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def _clear(self) -> None:
        if self._drawn:
            width = shutil.get_terminal_size((80, 24)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self._drawn = False

    def _line(self, now: float) -> str:
        t0, d0 = self._samples[0]
        rate = (self.done - d0) / (now - t0) if now > t0 else 0.0
        parts = [self.label] if self.label else []
        if self.files_total:
            parts.append("%d/%d files" % (self.files_done, self.files_total))
        if self.total:
            parts.append("%s / %s" % (human_bytes(self.done),
                                      human_bytes(self.total)))
            parts.append("%3d%%" % (100 * self.done // self.total))
        else:
            parts.append(human_bytes(self.done))
        parts.append("%s/s" % human_bytes(rate))
        left = self.total - self.done
        if self.total and left > 0 and rate > 0:
            parts.append("ETA %s" % human_duration(left / rate))
        elif self.total and left <= 0:
            parts.append("in %s" % human_duration(now - self._start))
        return "  ".join(parts)
