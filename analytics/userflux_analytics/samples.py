"""Streaming ``samples.ndjson`` in bounded memory.

The engine's reader rule recovers exactly the complete lines of a file cut
short by a crash: *a line is complete only when it ends with a newline; a NUL
byte ends a line without completing it*. Incomplete pieces, and complete lines
that do not parse, are skipped and counted, never fatal.

Lines are aggregated on the fly into a time × latency grid (for the heat
map), so memory does not grow with the file: 10 million lines take the same
memory as ten.
"""

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20
# A samples file this large gets a progress line on stderr while it is read.
PROGRESS_FROM = 64 << 20
PROGRESS_EVERY_S = 1.0
# Latency bins: log-spaced from 10 µs to 100 s.
LAT_LO_US, LAT_HI_US, LAT_BINS = 10.0, 1e8, 70


def lat_bin(us: float) -> int:
    us = min(max(us, LAT_LO_US), LAT_HI_US * 0.999999)
    return int((math.log10(us) - math.log10(LAT_LO_US)) / (math.log10(LAT_HI_US) - math.log10(LAT_LO_US)) * LAT_BINS)


def lat_edge_ms(i: int) -> float:
    """The lower edge of latency bin ``i``, in ms."""
    lo, hi = math.log10(LAT_LO_US), math.log10(LAT_HI_US)
    return 10 ** (lo + (hi - lo) * i / LAT_BINS) / 1000.0


@dataclass
class SampleStats:
    lines: int = 0
    incomplete: int = 0
    unparsable: int = 0
    errors: int = 0
    # grid[second][latency bin] = count
    grid: dict[int, list[int]] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return self.incomplete + self.unparsable


class Progress:
    """`reading samples.ndjson: 37% (250 of 680 MB)` on stderr, at most once a
    second, for a file of at least :data:`PROGRESS_FROM` bytes."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        self.name = path.name
        self.on = self.size >= PROGRESS_FROM
        self.done = 0
        self.last = time.monotonic()
        self.shown = False

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.on and now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.shown = True
            pct = 100 * self.done // max(self.size, 1)
            end = "\r" if sys.stderr.isatty() else "\n"
            print(f"reading {self.name}: {pct}% ({self.done >> 20} of {self.size >> 20} MB)", end=end, file=sys.stderr)

    def finish(self) -> None:
        if self.shown:
            print(f"reading {self.name}: done ({self.size >> 20} MB)", file=sys.stderr)


def complete_lines(path: Path, counts: SampleStats):
    """Yields the complete lines (bytes, without the newline), per the reader rule."""
    rest = b""
    progress = Progress(path)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            progress.add(len(chunk))
            data = rest + chunk
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl < 0:
                    break
                line = data[start:nl]
                start = nl + 1
                if b"\0" in line:
                    # text before a NUL never ended; after the last one, a line begins
                    head, _, line = line.rpartition(b"\0")
                    counts.incomplete += sum(1 for piece in head.split(b"\0") if piece)
                if line:
                    yield line
            rest = data[start:]
    progress.finish()
    counts.incomplete += sum(1 for piece in rest.split(b"\0") if piece)


def read(path: Path) -> SampleStats:
    """Reads a samples file into a :class:`SampleStats`."""
    s = SampleStats()
    loads = json.loads
    grid = s.grid
    for line in complete_lines(path, s):
        try:
            d = loads(line)
            t = int(d["t"]) // 1_000_000
            # an `interrupted` request has no latency: counted, not plotted
            lat = d.get("co", d.get("lat"))
            lat = float(lat) if lat is not None or "err" not in d else None
        except (ValueError, KeyError, TypeError):
            s.unparsable += 1
            continue
        s.lines += 1
        if "err" in d:
            s.errors += 1
        if lat is None:
            continue
        row = grid.get(t)
        if row is None:
            row = grid[t] = [0] * LAT_BINS
        row[lat_bin(lat)] += 1
    return s
