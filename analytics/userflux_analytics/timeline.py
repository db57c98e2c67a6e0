"""The summary's timeline as the charts read it: whole seconds, and the
partial ones.

The engine marks a second the run covered only in part — the one a stop or
the load's end cut, and the graceful stop's tail — with ``covered`` (seconds,
0..1), and gives its rates per covered time. Drawn as a whole second it reads
as a collapse or a spike that did not happen (issue #28: a 6 s run's
throughput "dropped to 0" at t=6 and its p95 "jumped" from 8 to 19 ms). So a
series is split here into the points of whole seconds, which a chart joins
with a line, and those of partial seconds, which it marks apart
(:func:`charts.mark_partial`); counts become rates by dividing by the covered
time, the same rule the engine applies to ``rps``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


def covered(entry: dict) -> float:
    """The seconds of this second the run covered (1 for a whole one)."""
    c = entry.get("covered")
    return 1.0 if c is None else min(max(float(c), 0.0), 1.0)


def is_partial(entry: dict) -> bool:
    return covered(entry) < 1.0


@dataclass
class Series:
    """One line of a time chart: whole seconds ``x``/``y``; partial seconds
    ``px``/``py`` with their covered time ``pc``."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    px: list[float] = field(default_factory=list)
    py: list[float] = field(default_factory=list)
    pc: list[float] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.x and not self.px

    def values(self) -> list[float]:
        return self.y + self.py


def series(timeline: list[dict], value: Callable[[dict], float | None]) -> Series:
    """``value(entry)`` per second, split into whole and partial seconds; a
    ``None`` value is left out (a second with no latency)."""
    s = Series()
    for e in timeline:
        v = value(e)
        if v is None:
            continue
        if is_partial(e):
            s.px.append(e["t"])
            s.py.append(v)
            s.pc.append(covered(e))
        else:
            s.x.append(e["t"])
            s.y.append(v)
    return s


def per_second(entry: dict, count: float) -> float:
    """A count in this second as a rate: per the time the run covered of it."""
    return count / max(covered(entry), 1e-3)


def partial_points(timeline: list[dict]) -> list[dict]:
    """The partial seconds, as a table row each: ``t``, ``covered``, ``requests``, ``rps``."""
    return [
        {"t": e["t"], "covered": covered(e), "requests": e.get("requests", 0), "rps": e.get("rps", 0.0)}
        for e in timeline
        if is_partial(e)
    ]
