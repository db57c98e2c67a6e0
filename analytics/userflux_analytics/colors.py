"""One colour per endpoint (and per flow, per Server-Timing metric) across
every chart and table of a report and of a comparison.

A name's colour comes from its place among all the names of its kind, in
sorted order, so the same endpoint has the same colour in every chart, and
in both runs of a comparison when the palette is built from both."""

from collections.abc import Iterable

# matplotlib's tab10 then its lighter tab20 partners: 20 colours that tell
# apart at a glance; past 20 names they repeat.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
# The total of several endpoints, where a chart draws one.
TOTAL = "#000000"


def palette(names: Iterable[str]) -> dict[str, str]:
    """A colour per name, by the names' sorted order."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(set(names)))}


def of_runs(*summaries: dict) -> dict[str, dict[str, str]]:
    """The palettes of one or more runs' summaries, by kind: `endpoints`,
    `flows`, `metrics` (Server-Timing)."""
    endpoints, flows, metrics = set(), set(), set()
    for s in summaries:
        endpoints |= set(s.get("endpoints", {}))
        flows |= set(s.get("flows") or {})
        for e in s.get("endpoints", {}).values():
            metrics |= set(e.get("server_timing") or {})
    return {"endpoints": palette(endpoints), "flows": palette(flows), "metrics": palette(metrics)}
