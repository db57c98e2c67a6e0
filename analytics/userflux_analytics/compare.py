"""Runs side by side — two, or a trend of several judged against the
first: per endpoint (and totals), RPS, error rate and
each latency percentile of run A and run B, the change, and whether the
change is a regression beyond the tolerance:

- latency (p50 … max) regressed when B is more than ``tolerance`` slower;
- RPS regressed when B is more than ``tolerance`` lower;
- error rate regressed when B's is more than ``tolerance`` higher (relative)
  *and* at least 0.1 percentage point higher, so 0.001 % → 0.002 % is not news.
"""

import base64
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader

from . import charts, colors
from . import timeline as tl
from .report import decode_histograms, number
from .run import Run

LATENCY = ("p50", "p90", "p95", "p99", "p99_9", "max")
ERROR_RATE_FLOOR = 0.001


@dataclass
class Row:
    endpoint: str
    metric: str
    a: float | None
    b: float | None
    regression: bool

    @property
    def change(self) -> float | None:
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a - 1.0


@dataclass
class Comparison:
    a: Run
    b: Run
    tolerance: float
    rows: list[Row] = field(default_factory=list)
    # endpoints only one of the runs has: compared in neither's favour, but named
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]


def _latency(stats: dict) -> dict:
    return stats.get("latency_corrected_ms") or stats.get("latency_ms") or {}


def rows_for(name: str, a: dict, b: dict, tol: float) -> list[Row]:
    out = [Row(name, "rps", a["rps"], b["rps"], b["rps"] < a["rps"] * (1 - tol))]
    ea, eb = a["error_rate"], b["error_rate"]
    out.append(Row(name, "error_rate", ea, eb, eb > ea * (1 + tol) and eb - ea >= ERROR_RATE_FLOOR))
    la, lb = _latency(a), _latency(b)
    for p in LATENCY:
        va, vb = la.get(p), lb.get(p)
        bad = va is not None and vb is not None and vb > va * (1 + tol)
        out.append(Row(name, f"{p} ms", va, vb, bad))
    return out


def compare(a: Run, b: Run, tolerance: float) -> Comparison:
    c = Comparison(a, b, tolerance)
    ea, eb = set(a.summary["endpoints"]), set(b.summary["endpoints"])
    c.only_a, c.only_b = sorted(ea - eb), sorted(eb - ea)
    for name in sorted(ea & eb):
        c.rows += rows_for(name, a.summary["endpoints"][name], b.summary["endpoints"][name], tolerance)
    c.rows += rows_for("total", a.summary["totals"], b.summary["totals"], tolerance)
    return c


def describe(c: Comparison) -> list[str]:
    lines = [f"{c.b.run_id} against {c.a.run_id} (tolerance {c.tolerance:.0%}):"]
    if c.only_a:
        lines.append(f"not in {c.b.run_id}: {', '.join(c.only_a)}")
    if c.only_b:
        lines.append(f"only in {c.b.run_id}: {', '.join(c.only_b)}")
    if not c.regressions:
        lines.append("no regressions")
    for r in c.regressions:
        lines.append(
            f"REGRESSION {r.endpoint} {r.metric}: {r.a:.4g} → {r.b:.4g} ({r.change:+.1%})"
            if r.change is not None
            else f"REGRESSION {r.endpoint} {r.metric}: {r.a} → {r.b}"
        )
    return lines


def _overlay(title: str, ylabel: str, series: list[tuple[str, tl.Series]], log: bool = False):
    """Runs over time on one axis: in one colour, each run in its line style
    (A solid, B dashed, C dotted, …); their partial seconds marked."""
    if all(s.empty for _, s in series):
        return None
    fig, ax = plt.subplots(figsize=charts.SIZE)
    chart = charts.TimeChart(ax, log=log, rates=not log)
    for i, (label, s) in enumerate(series):
        chart.line(s, label, colors.TOTAL, style=charts.run_style(i))
    chart.finish(title, ylabel)
    return charts._png(fig)


def _rps(timeline: list[dict]) -> tl.Series:
    return tl.series(timeline, lambda e: e["rps"])


def _p99(timeline: list[dict]) -> tl.Series:
    return tl.series(timeline, lambda e: e.get("p99"))


def build(a: Run, b: Run, out: Path, tolerance: float) -> Comparison:
    c = compare(a, b, tolerance)
    out.mkdir(parents=True, exist_ok=True)
    ta, tb = a.summary["timeline"], b.summary["timeline"]
    la, lb = f"A {a.run_id}", f"B {b.run_id}"
    figures = [
        ("Throughput", "compare-throughput.png",
         _overlay("Throughput", "requests per second", [(la, _rps(ta)), (lb, _rps(tb))])),
        ("p99 latency over time", "compare-p99.png",
         _overlay("p99 latency over time", "latency (ms)", [(la, _p99(ta)), (lb, _p99(tb))], log=True)),
    ]  # fmt: skip
    ha = decode_histograms(a.summary, "histograms")
    hb = decode_histograms(b.summary, "histograms")
    # one colour per endpoint in both runs; A solid, B dashed
    ep = colors.of_runs(a.summary, b.summary)["endpoints"]
    series = {f"A {k}": v for k, v in ha.items()} | {f"B {k}": v for k, v in hb.items()}
    spectrum = charts.spectrum(
        series,
        colors={f"{r} {k}": ep[k] for r in "AB" for k in ep},
        styles={f"B {k}": "--" for k in ep},
    )
    figures.append(("Latency by percentile", "compare-spectrum.png", spectrum))
    figures = [(t, f, p) for t, f, p in figures if p]
    for _, name, png in figures:
        (out / name).write_bytes(png)
    env = Environment(loader=PackageLoader("userflux_analytics", "templates"), autoescape=True)
    env.filters["number"] = number
    html = env.get_template("compare.html.j2").render(
        c=c, colors=ep, charts=[{"title": t, "b64": base64.b64encode(p).decode()} for t, _, p in figures]
    )
    (out / "compare.html").write_text(html, encoding="utf-8")
    return c


@dataclass
class TrendRow:
    endpoint: str
    metric: str
    values: list[float | None]
    # per later run: a regression from the first
    regressions: list[bool]


def trend(comparisons: list[Comparison]) -> list[TrendRow]:
    """One row per endpoint and metric: the first run's value, then each
    later one's (``None`` where a run lacks the endpoint: see :func:`missing`)."""
    n = len(comparisons)
    rows: dict[tuple[str, str], TrendRow] = {}
    for i, c in enumerate(comparisons):
        for r in c.rows:
            key = (r.endpoint, r.metric)
            t = rows.setdefault(key, TrendRow(r.endpoint, r.metric, [r.a] + [None] * n, [False] * n))
            t.values[i + 1] = r.b
            t.regressions[i] = r.regression
    order = {name: k for k, name in enumerate(sorted({r.endpoint for r in rows.values()} - {"total"}) + ["total"])}
    return sorted(rows.values(), key=lambda t: order[t.endpoint])


def missing(runs: list[Run]) -> list[dict]:
    """Per endpoint that some run lacks: its name and the runs (1-based) without it."""
    names = sorted(set().union(*(r.summary["endpoints"] for r in runs)))
    out = []
    for name in names:
        without = [i + 1 for i, r in enumerate(runs) if name not in r.summary["endpoints"]]
        if without:
            out.append({"endpoint": name, "runs": without})
    return out


def build_many(runs: list[Run], out: Path, tolerance: float) -> list[Comparison]:
    """Two runs: :func:`build`. More: each later run judged against the
    first, a trend table and every run overlaid in the charts."""
    if len(runs) == 2:
        return [build(runs[0], runs[1], out, tolerance)]
    first = runs[0]
    comparisons = [compare(first, r, tolerance) for r in runs[1:]]
    out.mkdir(parents=True, exist_ok=True)
    label = [f"{i + 1}. {r.run_id}" for i, r in enumerate(runs)]
    tls = [r.summary["timeline"] for r in runs]
    figures = [
        ("Throughput", _overlay("Throughput", "requests per second",
                                [(lbl, _rps(t)) for lbl, t in zip(label, tls, strict=True)])),
        ("p99 latency over time", _overlay("p99 latency over time", "latency (ms)",
                                           [(lbl, _p99(t)) for lbl, t in zip(label, tls, strict=True)], log=True)),
    ]  # fmt: skip
    figures = [(t, p) for t, p in figures if p]
    for i, (_, png) in enumerate(figures):
        (out / f"compare-{i}.png").write_bytes(png)
    env = Environment(loader=PackageLoader("userflux_analytics", "templates"), autoescape=True)
    env.filters["number"] = number
    html = env.get_template("compare_many.html.j2").render(
        runs=runs,
        colors=colors.of_runs(*(r.summary for r in runs))["endpoints"],
        missing=missing(runs),
        labels=label,
        tolerance=tolerance,
        rows=trend(comparisons),
        regressions=sum(len(c.regressions) for c in comparisons),
        charts=[{"title": t, "b64": base64.b64encode(p).decode()} for t, p in figures],
    )
    (out / "compare.html").write_text(html, encoding="utf-8")
    return comparisons
