"""Progress of long operator commands: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 28


class ProgressLine:
    """Call with (done, total) as work advances; ``close()`` at the end.

    On a terminal the line is redrawn at most every ``tty_interval_s``; when output goes to a
    file or a log collector, a plain line is written every ``plain_interval_s`` instead, so
    logs stay readable. ``quiet`` prints nothing.
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        tty_interval_s: float = 0.2,
        plain_interval_s: float = 5.0,
    ) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = tty_interval_s if self._tty else plain_interval_s
        self._now = time.monotonic
        self._started = self._now()
        self._last_shown = float("-inf")
        self._first: int | None = None
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self._quiet:
            return
        if self._first is None:
            self._first = done
        now = self._now()
        if now - self._last_shown < self._interval and done < total:
            return
        self._last_shown = now
        self._show(self.describe(done, total, now - self._started))

    def describe(self, done: int, total: int, elapsed_s: float) -> str:
        rate = (done - (self._first or 0)) / elapsed_s if elapsed_s > 0 else 0.0
        left = max(total - done, 0)
        eta = _duration(left / rate) if rate > 0 else "?"
        share = done / total if total else 1.0
        figures = f"{done:,}/{total:,} events  {rate:,.0f} events/s  ETA {eta}"
        if not self._tty:
            return f"{self._label}: {share:.0%} {figures}"
        filled = round(BAR_WIDTH * min(share, 1.0))
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{self._label} [{bar}] {share:4.0%}  {figures}"

    def close(self) -> None:
        if self._drawn and self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _show(self, line: str) -> None:
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        self._drawn = True


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
