"""Progress of a bulk load: a bar per table on a terminal, one plain line per table otherwise.

The bar is redrawn in place with ``\\r`` at most a few times a second (rows, share, rate and
time left); a pipe or a log file gets only the finished line, so CI logs stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TextIO

REDRAW_SECONDS = 0.25
BAR_WIDTH = 24
LINES_PER_CHECK = 2_000  # rows between looks at the clock


class Progress:
    def __init__(self, table: str, total: int, out: TextIO) -> None:
        self.table = table
        self.total = max(1, total)
        self.rows = 0
        self._out = out
        self._tty = out.isatty()
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self._tty and now - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            self._out.write("\r" + self._bar(now - self._started))
            self._out.flush()

    def finish(self, note: str = "") -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        line = (f"{self.table:<28} {self.rows:>11,} rows in {elapsed:6.1f}s "
                f"({self.rows / elapsed:,.0f} rows/s){note}")
        self._out.write(("\r" + line + " " * 8 + "\n") if self._tty else line + "\n")
        self._out.flush()

    def _bar(self, elapsed: float) -> str:
        share = min(1.0, self.rows / self.total)
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.rows) / rate if rate > 0 else 0.0
        filled = int(share * BAR_WIDTH)
        return (f"{self.table:<28} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{self.rows:>11,}/{self.total:,} {share:4.0%} {rate:>9,.0f} rows/s "
                f"{left:5.0f}s left")


class LineStream:
    """A read-only text file over generated COPY lines, counting them into ``progress``.

    psycopg2's ``copy_expert`` pulls it in blocks, so PostgreSQL parses and indexes one
    block while the next is generated; nothing holds a whole table in memory.
    """

    def __init__(self, lines: Iterator[str], progress: Progress) -> None:
        self._lines = lines
        self._progress = progress
        self._pending = ""

    def read(self, size: int = -1) -> str:
        parts = [self._pending]
        length = len(self._pending)
        counted = 0
        for line in self._lines:
            parts.append(line)
            length += len(line)
            counted += 1
            if counted == LINES_PER_CHECK:
                self._progress.advance(counted)
                counted = 0
            if 0 <= size <= length:
                break
        self._progress.advance(counted)
        block = "".join(parts)
        if 0 <= size < len(block):
            block, self._pending = block[:size], block[size:]
        else:
            self._pending = ""
        return block
