"""``samples.ndjson`` read by DuckDB, in bounded memory.

DuckDB's NDJSON reader (``read_json``) parses the file on every core and
aggregates as it goes: one ``GROUP BY`` over (second, endpoint, error kind,
latency bin) is all that is kept, so 100 million lines take the memory of
ten (measured by ``bench_samples.py``; DuckDB against Polars in the commit
that chose it). The heat map, the per-second/per-endpoint counts and the
error kinds are queries over that small table.

The engine's reader rule recovers exactly the complete lines of a file cut
short by a crash: *a line is complete only when it ends with a newline; a
NUL byte ends a line without completing it* (``engine/src/measure/samples.rs``,
``recover``). Incomplete pieces are counted in ``incomplete``; complete lines
that do not parse, or lack what a sample has (``t``, ``ep``, and a latency
or an error), in ``unparsable``. Neither is ever fatal.

A file the engine finished is valid NDJSON without a NUL, so it goes to
DuckDB as it is. A file that does not end with a newline, or in which DuckDB
found lines it could not parse and a NUL is present, is *repaired* on the
way: read in chunks, each cut at its last newline or NUL, the rule applied in
C-speed byte operations, and the complete lines handed to DuckDB a batch
(:data:`BATCH` bytes at most) at a time through a temporary file.
"""

import math
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

# A samples file this large gets a progress line on stderr while it is read.
PROGRESS_FROM = 64 << 20
PROGRESS_EVERY_S = 1.0
# Latency bins: log-spaced from 10 µs to 100 s.
LAT_LO_US, LAT_HI_US, LAT_BINS = 10.0, 1e8, 70
# The repair path reads this much at a time and hands DuckDB batches of complete lines up to this size.
CHUNK = 16 << 20
BATCH = 64 << 20
# A "line" longer than this (no newline, no NUL) is garbage: counted unparsable and skipped.
LONGEST_LINE = 1 << 20
# Characters DuckDB reads as a glob pattern in a path.
GLOB = "*?["
# DuckDB's memory for the read; the aggregate it keeps is small, this bounds its buffers.
MEMORY_LIMIT = "1GB"
# The time axis keeps at most this many columns: a run longer than two hours (or a line with a
# wild `t`) is counted in columns of several seconds, so memory never follows the run's length.
MAX_COLUMNS = 7200
# The query groups seconds into columns of a *grain* of seconds as it reads (`GRAIN` in the SQL),
# estimated from the `t` of the lines in this much of the file's head and tail: grouping on raw
# seconds and capping after took 1,080 MB for 10 M lines over 5.8 days (issue #28).
ESTIMATE_BYTES = 1 << 20
_T = re.compile(rb'"t":(\d+)')

COLUMNS = {
    "t": "UBIGINT",
    "ep": "VARCHAR",
    "st": "USMALLINT",
    "err": "VARCHAR",
    "lat": "UBIGINT",
    "co": "UBIGINT",
    "b": "UBIGINT",
    "w": "UINTEGER",
    "vu": "UBIGINT",
}
_COLUMNS_SQL = "{" + ", ".join(f"{k}: '{v}'" for k, v in COLUMNS.items()) + "}"
_SPAN = math.log10(LAT_HI_US) - math.log10(LAT_LO_US)

# One row per (second, endpoint, error kind, latency bin) and whether the line was unusable; `n` lines each.
# The bin is `lat_bin` below, in SQL: the corrected latency when there is one, none for a request without
# a latency (`interrupted`). A line that parsed as NULLs (malformed JSON, a value of the wrong type) or lacks
# `t`, `ep`, or both a latency and an error is `bad`.
_GROUPS = f"""
SELECT bad,
       CASE WHEN bad THEN NULL ELSE t // 1000000 // GRAIN * GRAIN END AS s,
       CASE WHEN bad THEN NULL ELSE ep END AS ep,
       CASE WHEN bad THEN NULL ELSE err END AS err,
       CASE WHEN bad OR l IS NULL THEN NULL ELSE CAST(least(floor(
           (log10(least(greatest(l, {LAT_LO_US}), {LAT_HI_US * 0.999999})) - {math.log10(LAT_LO_US)})
           / {_SPAN} * {LAT_BINS}), {LAT_BINS - 1}) AS INTEGER) END AS bin,
       count(*) AS n,
       min(CASE WHEN bad THEN NULL ELSE t // 1000000 END) AS lo,
       max(CASE WHEN bad THEN NULL ELSE t // 1000000 END) AS hi
FROM (
    SELECT t, ep, err, CAST(coalesce(co, lat) AS DOUBLE) AS l,
           (t IS NULL OR ep IS NULL OR (lat IS NULL AND co IS NULL AND err IS NULL)) AS bad
    FROM read_json($path, format = 'newline_delimited', columns = {_COLUMNS_SQL},
                   ignore_errors = true, maximum_object_size = {2 * LONGEST_LINE})
)
GROUP BY ALL
"""


class SamplesError(Exception):
    """The samples file could not be read at all (not a damaged line: those are counted)."""


def lat_bin(us: float) -> int:
    """The heat map's latency bin of ``us`` µs (the query computes the same)."""
    us = min(max(us, LAT_LO_US), LAT_HI_US * 0.999999)
    return int((math.log10(us) - math.log10(LAT_LO_US)) / _SPAN * LAT_BINS)


def lat_edge_ms(i: int) -> float:
    """The lower edge of latency bin ``i``, in ms."""
    lo, hi = math.log10(LAT_LO_US), math.log10(LAT_HI_US)
    return 10 ** (lo + (hi - lo) * i / LAT_BINS) / 1000.0


@dataclass
class EndpointSamples:
    """One endpoint's sampled requests."""

    lines: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # per column of SampleStats.step seconds from SampleStats.t0: [0] requests, [1] failed
    columns: np.ndarray | None = None

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


@dataclass
class SampleStats:
    lines: int = 0
    incomplete: int = 0
    unparsable: int = 0
    errors: int = 0
    # the first and last second with a sample (from the run's start)
    t0: int = 0
    t1: int = -1
    # seconds per time column (1 unless the samples span more than MAX_COLUMNS seconds)
    step: int = 1
    # where column 0 starts (t0, or the start of the column holding t0 when step > 1)
    origin: int = 0
    # heat[latency bin][(second - origin) // step] = requests
    heat: np.ndarray = field(default_factory=lambda: np.zeros((LAT_BINS, 0), dtype=np.int64))
    endpoints: dict[str, EndpointSamples] = field(default_factory=dict)
    # how the file was read: "direct" (valid NDJSON) or "repaired" (the crash rule applied)
    path: str = "direct"
    # rows of the aggregate the query kept: what the memory follows (not the lines, not the span)
    groups: int = 0

    @property
    def skipped(self) -> int:
        return self.incomplete + self.unparsable

    @property
    def plotted(self) -> int:
        """Lines in the heat map (those with a latency)."""
        return int(self.heat.sum())


class Progress:
    """`reading samples.ndjson: 37% (250 of 680 MB)` on stderr, at most once a
    second, for a file of at least :data:`PROGRESS_FROM` bytes; the share is
    of the bytes actually read, and the last line before `done` says 100 %
    (DuckDB's own query progress stopped at 28–49 % on a 6 GB file: issue #28)."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        self.name = path.name
        self.on = self.size >= PROGRESS_FROM
        self.last = time.monotonic()
        self.shown = False
        self.pct = -1

    def show(self, fraction: float, force: bool = False) -> None:
        now = time.monotonic()
        if self.on and (force or now - self.last >= PROGRESS_EVERY_S):
            self.last = now
            self.shown = True
            self.pct = int(100 * min(max(fraction, 0.0), 1.0))
            end = "\r" if sys.stderr.isatty() else "\n"
            done = int(self.size * min(fraction, 1.0)) >> 20
            print(f"reading {self.name}: {self.pct}% ({done} of {self.size >> 20} MB)", end=end, file=sys.stderr)

    def finish(self, complete: bool = True) -> None:
        if self.shown:
            if complete and self.pct < 100:
                self.show(1.0, force=True)  # the whole file has been read
            print(f"reading {self.name}: done ({self.size >> 20} MB)", file=sys.stderr)


def bytes_read() -> int | None:
    """Bytes this process has read so far (Linux's ``/proc/self/io`` ``rchar``), or ``None``."""
    try:
        with open("/proc/self/io", "rb") as f:
            for row in f:
                if row.startswith(b"rchar:"):
                    return int(row.split()[1])
    except (OSError, ValueError):
        pass
    return None


class _Watch:
    """Shows how far the running query has read the file, from a thread (the
    query releases the GIL): the bytes this process read since it started,
    or, where the system does not count them, DuckDB's query progress."""

    def __init__(self, con: duckdb.DuckDBPyConnection, progress: Progress) -> None:
        self.con, self.progress = con, progress
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.start = bytes_read()

    def _run(self) -> None:
        while not self.stop.wait(min(PROGRESS_EVERY_S, 0.2) or 0.01):
            now = bytes_read() if self.start is not None else None
            if now is not None:
                self.progress.show((now - self.start) / max(self.progress.size, 1))
            elif (pct := self.con.query_progress()) >= 0:
                self.progress.show(pct / 100)

    def __enter__(self):
        if self.progress.on:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


_RUN = re.compile(rb"[^\0]+")


class Repair:
    """The reader rule over a stream of chunks: :meth:`feed` returns the
    complete lines (whole, with their newlines) the chunk finishes; pieces a
    NUL ended, or the end of the file (:meth:`end`), are counted in
    ``incomplete``; a complete line longer than :data:`LONGEST_LINE` is
    dropped unread and counted in ``too_long``."""

    def __init__(self) -> None:
        self.rest = b""
        self.incomplete = 0
        self.too_long = 0
        self.skipping = False  # inside an overlong line: drop up to its end

    def feed(self, chunk: bytes) -> bytes:
        data = self.rest + chunk if self.rest else chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\0")) + 1
        if cut == 0:
            self.rest = data
            self._limit()
            return b""
        done, self.rest = data[:cut], data[cut:]
        if self.skipping:
            # the overlong line ends at the first delimiter: a newline completes it (unreadable), a NUL does not
            end = min(i for i in (done.find(b"\n"), done.find(b"\0")) if i >= 0)
            if done[end] == 0x0A:
                self.too_long += 1
            else:
                self.incomplete += 1
            done = done[end + 1 :]
            self.skipping = False
        self._limit()
        if b"\0" not in done:
            return done
        out = []
        for m in _RUN.finditer(done):
            piece = m.group()
            if m.end() == len(done):
                out.append(piece)  # ends with the cut's newline: all complete
                continue
            # a NUL follows this piece: what comes after its last newline never ended
            nl = piece.rfind(b"\n")
            if nl + 1 < len(piece):
                self.incomplete += 1
            if nl >= 0:
                out.append(piece[: nl + 1])
        return b"".join(out)

    def _limit(self) -> None:
        if len(self.rest) > LONGEST_LINE:
            self.skipping = True
            self.rest = b""

    def end(self) -> None:
        if self.rest or self.skipping:
            self.incomplete += 1
        self.rest, self.skipping = b"", False


def _connect(tmp: Path) -> duckdb.DuckDBPyConnection:
    # every core this process may run on; spilled data (never, for an aggregate this small) under `tmp`
    config = {"threads": len(os.sched_getaffinity(0)), "memory_limit": MEMORY_LIMIT, "temp_directory": str(tmp)}
    con = duckdb.connect(config=config)
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    con.execute(
        "CREATE TEMP TABLE g0 (bad BOOLEAN, s UBIGINT, ep VARCHAR, err VARCHAR, bin INTEGER, n BIGINT,"
        " lo UBIGINT, hi UBIGINT)"
    )
    return con


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def _has_nul(path: Path) -> bool:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if b"\0" in chunk:
                return True
    return False


def grain(path: Path, size: int) -> int:
    """Seconds per column to group by while reading: the span of the `t`s in
    the file's first and last :data:`ESTIMATE_BYTES` over :data:`MAX_COLUMNS`
    (samples are written in about time order). A wrong guess costs only
    columns (a few wild lines add a few groups each), never the result: the
    final columns are a whole number of grains."""
    with path.open("rb") as f:
        head = f.read(ESTIMATE_BYTES)
        f.seek(max(size - ESTIMATE_BYTES, len(head)))
        tail = f.read(ESTIMATE_BYTES)
    ts = [int(m.group(1)) for m in _T.finditer(head + b"\n" + tail)]
    if not ts:
        return 1
    span = (max(ts) - min(ts)) // 1_000_000 + 1
    return max(1, -(-span // MAX_COLUMNS))


def _groups(g: int) -> str:
    return f"INSERT INTO g0 {_GROUPS.replace('GRAIN', str(g))}"


def _direct(con: duckdb.DuckDBPyConnection, path: Path, progress: Progress, g: int) -> None:
    with _Watch(con, progress):
        con.execute(_groups(g), {"path": str(path)})


def _repaired(
    con: duckdb.DuckDBPyConnection, path: Path, tmp: Path, progress: Progress, stats: "SampleStats", g: int
) -> None:
    rule = Repair()
    batch_path = tmp / "batch.ndjson"
    batch, size, read = [], 0, 0

    def flush() -> None:
        nonlocal batch, size
        if size:
            batch_path.write_bytes(b"".join(batch))
            con.execute(_groups(g), {"path": str(batch_path)})
        batch, size = [], 0

    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            read += len(chunk)
            progress.show(read / max(progress.size, 1))
            lines = rule.feed(chunk)
            if lines:
                batch.append(lines)
                size += len(lines)
            if size >= BATCH:
                flush()
    rule.end()
    flush()
    batch_path.unlink(missing_ok=True)
    stats.incomplete += rule.incomplete
    stats.unparsable += rule.too_long
    stats.path = "repaired"


def read(path: Path) -> SampleStats:
    """Reads a samples file into a :class:`SampleStats`; raises
    :class:`SamplesError` only when the file cannot be read at all."""
    path = Path(path)
    stats = SampleStats()
    progress = Progress(path)
    complete = False
    try:
        size = path.stat().st_size
        if size == 0:
            return stats
        with tempfile.TemporaryDirectory(prefix="userflux-samples-") as tmp:
            if any(c in tmp for c in GLOB):
                raise SamplesError(f"{path}: the temporary directory {tmp} has a glob character ({GLOB}); set TMPDIR")
            # DuckDB takes a path as a glob pattern (`runs/[old]/…` would match other files):
            # it reads the file through a link with a plain name
            plain = Path(tmp) / "samples.ndjson"
            plain.symlink_to(path.resolve())
            con = _connect(Path(tmp))
            try:
                clean_end = _ends_with_newline(path, size)
                g = grain(path, size)
                if clean_end:
                    _direct(con, plain, progress, g)
                bad = con.execute("SELECT coalesce(sum(n), 0) FROM g0 WHERE bad").fetchone()[0]
                if not clean_end or (bad and _has_nul(path)):
                    con.execute("DELETE FROM g0")
                    _repaired(con, path, Path(tmp), progress, stats, g)
                _summarize(con, stats, g)
                complete = True
            finally:
                con.close()
    except (OSError, duckdb.Error) as e:
        raise SamplesError(f"{path}: cannot read: {str(e).splitlines()[0]}") from e
    finally:
        progress.finish(complete)
    return stats


def _summarize(con: duckdb.DuckDBPyConnection, stats: SampleStats, g: int = 1) -> None:
    con.execute(
        "CREATE TEMP TABLE g AS SELECT bad, s, ep, err, bin, sum(n)::BIGINT AS n, min(lo) AS lo, max(hi) AS hi"
        " FROM g0 GROUP BY bad, s, ep, err, bin"
    )
    stats.groups = int(con.execute("SELECT count(*) FROM g").fetchone()[0])
    good, bad, errors, t0, t1 = con.execute(
        """SELECT coalesce(sum(n) FILTER (WHERE NOT bad), 0), coalesce(sum(n) FILTER (WHERE bad), 0),
                  coalesce(sum(n) FILTER (WHERE err IS NOT NULL), 0), min(lo), max(hi) FROM g"""
    ).fetchone()
    stats.lines, stats.errors = int(good), int(errors)
    stats.unparsable += int(bad)
    if t0 is None:
        return
    stats.t0, stats.t1 = int(t0), int(t1)
    # columns of a whole number of grains, at most MAX_COLUMNS of them
    stats.origin = stats.t0 // g * g
    grains = (stats.t1 - stats.origin) // g + 1
    stats.step = g * -(-grains // MAX_COLUMNS)
    width = (stats.t1 - stats.origin) // stats.step + 1
    col = f"(s - {stats.origin}) // {stats.step}"
    heat = con.execute(
        f"SELECT bin, {col} AS c, sum(n)::BIGINT AS n FROM g WHERE bin IS NOT NULL GROUP BY ALL"
    ).fetchnumpy()
    stats.heat = np.zeros((LAT_BINS, width), dtype=np.int64)
    np.add.at(stats.heat, (heat["bin"].astype(np.int64), heat["c"].astype(np.int64)), heat["n"])
    per = con.execute(
        f"""SELECT ep, {col} AS c, sum(n)::BIGINT AS n,
                   coalesce(sum(n) FILTER (WHERE err IS NOT NULL), 0)::BIGINT AS f
            FROM g WHERE NOT bad GROUP BY ALL ORDER BY ep"""
    ).fetchnumpy()
    for ep in dict.fromkeys(per["ep"].tolist()):
        rows = per["ep"] == ep
        arr = np.zeros((2, width), dtype=np.int64)
        cols = per["c"][rows].astype(np.int64)
        arr[0, cols] = per["n"][rows]
        arr[1, cols] = per["f"][rows]
        stats.endpoints[ep] = EndpointSamples(lines=int(arr[0].sum()), columns=arr)
    for ep, err, n in con.execute(
        "SELECT ep, err, sum(n)::BIGINT FROM g WHERE NOT bad AND err IS NOT NULL GROUP BY ALL ORDER BY ep, err"
    ).fetchall():
        stats.endpoints[ep].errors[err] = int(n)
