"""The report's figures. Each function takes what it draws and returns PNG
bytes, or ``None`` when the run has no such data (a chart is left out, never
drawn empty). Axes are labelled with units."""

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, MultipleLocator, NullLocator  # noqa: E402

from . import samples as smp  # noqa: E402
from . import timeline as tl  # noqa: E402
from .colors import TOTAL, palette  # noqa: E402
from .hdr import Histogram  # noqa: E402

DPI = 100
SIZE = (9, 3.6)
# The heat map draws at most this many time columns (a 900-pixel chart).
HEAT_COLUMNS = 900
# When a list: every chart drawn appends (chart title, series label,
# colour) for each of its lines and bars (tests check the colours).
RECORD: list[tuple[str, str, str]] | None = None
# When a list: every line drawn appends (chart title, label, xs, ys), the
# partial seconds' points as label "_partial" (tests check what is joined).
POINTS: list[tuple[str, str, list, list]] | None = None


def _record(fig) -> None:
    from matplotlib.colors import to_hex

    for ax in fig.axes:
        title = ax.get_title()
        if POINTS is not None:
            for line in ax.get_lines():
                POINTS.append((title, line.get_label(), list(line.get_xdata()), list(line.get_ydata())))
        if RECORD is None:
            continue
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                RECORD.append((title, line.get_label(), to_hex(line.get_color())))
        for c in ax.containers:
            if c.get_label() and not c.get_label().startswith("_") and len(c.patches):
                RECORD.append((title, c.get_label(), to_hex(c.patches[0].get_facecolor())))


def _log_labels(ax) -> None:
    """Plain numbers on a log latency axis; over more than a decade and a
    half, minor ticks labelled at 2 and 5 only (all of them crowd)."""

    def minor(v: float, _) -> str:
        lo, hi = ax.get_ylim()
        if hi > 30 * max(lo, 1e-12) and f"{v:.1e}"[0] not in "25":
            return ""
        return f"{v:g}"

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _png(fig) -> bytes:
    if RECORD is not None or POINTS is not None:
        _record(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _colors(colors: dict[str, str] | None, names) -> dict[str, str]:
    return colors if colors is not None else palette(names)


# Runs of a comparison are told apart by line style (A solid, B dashed, C
# dotted, …), never by colour: colours belong to endpoints (issue #28).
RUN_STYLES = ["-", "--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 4))]
# Percentiles likewise: one colour, a style each, and a legend.
PERCENTILE_STYLES = {"p50": "-", "p90": "-.", "p95": "--", "p99": ":"}
# A partial second's point: hollow, in its series' colour, never joined to the line.
PARTIAL_MARKER = {"marker": "o", "markerfacecolor": "white", "markersize": 5, "markeredgewidth": 1.3}


def run_style(i: int):
    return RUN_STYLES[i % len(RUN_STYLES)]


def _nice_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 8:
            return step
    return 86400 * max(1, round(span / 86400 / 8))


def hms(seconds: float) -> str:
    """``h:mm:ss`` (``Nd hh:mm:ss`` past a day)."""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h:02}:{m:02}:{s:02}" if d else f"{h}:{m:02}:{s:02}"


def time_axis(ax, lo: float, hi: float) -> None:
    """The time axis: plain seconds up to ten minutes, else ``h:mm:ss``;
    never an offset such as "1e6" (issue #28)."""
    span = max(hi - lo, 1.0)
    ax.xaxis.set_major_locator(MultipleLocator(_nice_step(span)))
    if hi <= 600:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("time since start (s)")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: hms(v) if v >= 0 else ""))
        ax.set_xlabel("time since start (h:mm:ss)" if hi < 86400 else "time since start (days, hh:mm:ss)")


class TimeChart:
    """One time axis: each series' whole seconds as a line; its partial
    seconds (:mod:`timeline`) as hollow markers, not joined, drawn after the
    axis has been scaled on the whole seconds; one far above (a sliver's
    rate) sits at the edge as a triangle with its value written beside it."""

    def __init__(self, ax, log: bool = False, rates: bool = True) -> None:
        # rates: the values are per second (a partial second's per its covered time)
        self.ax, self.log, self.rates = ax, log, rates
        self.partials: list[tuple[tl.Series, str]] = []
        self.ts: list[float] = []
        # each series drawn, by its points: one drawn again says so (below)
        self.drawn: list[tuple[tl.Series, str, object]] = []

    def line(self, s: tl.Series, label: str, color: str | None, style="-", width: float = 1.5, step: bool = False):
        """Draws a series. One on (or within 2 % of) the points of a series
        drawn before would hide it or be hidden (``workers.png``'s orders lay
        under login): its label says "(same as …)" or "(≈ …)" and the earlier
        ones widen into pale bands around it, so all show."""
        if s.empty:
            return None
        noted = False
        for before, first, under in self.drawn:
            same = _coincide(before, s)
            if not same:
                continue
            if not noted:
                label = f"{label} ({'same as' if same == 'same' else '≈'} {first})"
                noted = True
            # every series under this one widens: nested bands, each visible
            under.set_linewidth(under.get_linewidth() + 3)
            under.set_alpha(0.4)
        kw = {"where": "post"} if step else {}
        draw = self.ax.step if step else self.ax.plot
        (line,) = draw(s.x, s.y, linestyle=style, label=label, color=color, linewidth=width, **kw)
        self.drawn.append((s, label, line))
        if s.px:
            self.partials.append((s, line.get_color()))
        self.ts += s.x + s.px
        return line

    def finish(self, title: str, ylabel: str, legend: bool = True) -> None:
        ax = self.ax
        if self.log:
            ax.set_yscale("log")
            _log_labels(ax)
        has_whole = any(len(line.get_xdata()) for line in ax.get_lines())
        if not self.log and has_whole:
            ax.set_ylim(bottom=0)  # rates and counts from zero: no small change drawn as a cliff
        if self.partials:
            if has_whole:
                ax.set_ylim(*ax.get_ylim())  # scaled on the whole seconds only
            lo, hi = ax.get_ylim()
            for s, color in self.partials:
                for x, y in zip(s.px, s.py, strict=True):
                    self._partial_point(x, y, color, lo, hi if has_whole else None)
            label = "partial second (per covered time)" if self.rates else "partial second"
            ax.plot([], [], linestyle="none", color="#555555", label=label, **PARTIAL_MARKER)
        if self.ts:
            time_axis(ax, min(self.ts), max(self.ts) + 1)
        ax.set(ylabel=ylabel, title=title)
        if legend:
            ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3, which="both" if self.log else "major")

    def _partial_point(self, x: float, y: float, color, lo: float, hi: float | None) -> None:
        ax = self.ax
        if hi is not None and y > hi:
            ax.plot([x], [hi], marker="^", color=color, clip_on=False, linestyle="none", label="_partial")
            ax.annotate(f"{y:,.3g}", (x, hi), xytext=(-4, -12), textcoords="offset points", ha="right",
                        fontsize="x-small", color=color)  # fmt: skip
        elif self.log and y < lo:
            ax.plot([x], [lo], marker="v", color=color, clip_on=False, linestyle="none", label="_partial")
        else:
            ax.plot([x], [y], linestyle="none", color=color, clip_on=False, label="_partial", **PARTIAL_MARKER)


def _coincide(a: tl.Series, b: tl.Series) -> str | None:
    """ "same" when two series have the same points, "near" when every value
    is within 2 % of the other's, else ``None``."""
    if a.x != b.x or a.px != b.px or not a.x:
        return None
    ya, yb = np.asarray(a.values(), dtype=float), np.asarray(b.values(), dtype=float)
    if np.array_equal(ya, yb):
        return "same"
    return "near" if np.allclose(ya, yb, rtol=0.02, atol=0.0) else None


def _draw_named(chart: TimeChart, series: dict[str, tl.Series], colors: dict[str, str], step: bool = False) -> None:
    for name, s in series.items():
        chart.line(s, name, colors.get(name), step=step)


def throughput(timeline: list[dict], label: str = "", colors: dict[str, str] | None = None) -> bytes | None:
    """Requests per second over the run: the total and each endpoint."""
    if not timeline:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    chart = TimeChart(ax)
    chart.line(tl.series(timeline, lambda e: e["rps"]), f"total{label}", TOTAL, width=2)
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    colors = _colors(colors, names)
    if len(names) > 1:
        per = {n: tl.series(timeline, lambda e, n=n: e["endpoints"].get(n, {}).get("rps", 0)) for n in names}
        _draw_named(chart, per, colors)
    chart.finish("Throughput", "requests per second")
    return _png(fig)


def latency_over_time(timeline: list[dict]) -> bytes | None:
    """p50, p95 and p99 latency of the responses completed in each second:
    one colour, a line style per percentile."""
    if not any(e.get("p50") is not None for e in timeline):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    chart = TimeChart(ax, log=True, rates=False)
    for key in ("p50", "p95", "p99"):
        chart.line(tl.series(timeline, lambda e, k=key: e.get(k)), key, TOTAL, style=PERCENTILE_STYLES[key])
    chart.finish("Latency percentiles over time", "latency (ms)")
    return _png(fig)


def spectrum(
    histograms: dict[str, Histogram],
    corrected: dict[str, Histogram] | None = None,
    colors: dict[str, str] | None = None,
    styles: dict[str, str] | None = None,
) -> bytes | None:
    """The latency percentile spectrum per endpoint, as HdrHistogram plots it:
    latency against percentile on a 1/(1-p) axis, so the tail gets the room.
    ``colors`` and ``styles`` by series name (a comparison colours by
    endpoint and styles by run)."""
    colors = _colors(colors, histograms)
    series = [(n, h, (styles or {}).get(n, "-"), colors.get(n)) for n, h in sorted(histograms.items()) if h.total]
    series += [(f"{n} (corrected)", h, "--", colors.get(n)) for n, h in sorted((corrected or {}).items()) if h.total]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    for name, h, style, color in series:
        # The top percentile is as fine as the count allows (1 - 1/count), not
        # 100 %, whose 1/(1-p) would be infinite.
        top = 1.0 - 1.0 / max(h.total, 2)
        pts = [(1.0 / (1.0 - min(p / 100.0, top)), v / 1000.0) for p, v in h.spectrum()]
        ax.step([p for p, _ in pts], [v for _, v in pts], style, where="post", label=name, color=color)
    ax.set_xscale("log")
    ticks = [1, 10, 100, 1000, 10000, 100000, 1000000]
    names = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: names[ticks.index(v)] if v in ticks else ""))
    ax.set(xlabel="percentile", ylabel="latency (ms)", title="Latency by percentile")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def endpoints(stats: dict[str, dict], colors: dict[str, str] | None = None) -> bytes | None:
    """p50 / p90 / p99 latency of each endpoint, side by side: the bars in
    the endpoint's colour, the percentile told by shade and hatching, both
    in the legend."""
    named = [(n, e["latency_ms"]) for n, e in sorted(stats.items()) if e.get("latency_ms")]
    if len(named) < 1:
        return None
    colors = _colors(colors, stats)
    fig, ax = plt.subplots(figsize=SIZE)
    width = 0.25
    looks = {"p50": (0.4, "///"), "p90": (0.7, ".."), "p99": (1.0, "")}
    for k, (key, (alpha, hatch)) in enumerate(looks.items()):
        xs = [i + (k - 1) * width for i in range(len(named))]
        for x, (n, lat) in zip(xs, named, strict=True):
            ax.bar([x], [lat[key]], width, color=colors.get(n), alpha=alpha, hatch=hatch, edgecolor="white",
                   label=n if key == "p99" else None)  # fmt: skip
    ax.set_xticks(range(len(named)), [n for n, _ in named])
    ax.set(ylabel="latency (ms)", title="Latency per endpoint")
    shades = [Patch(facecolor="#444444", alpha=a, hatch=h, edgecolor="white", label=k) for k, (a, h) in looks.items()]
    # the x axis names the endpoints; the legend says which bar is which percentile
    ax.legend(handles=shades, title="percentile", fontsize="small", title_fontsize="small", loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


# The where-the-time-goes bars: the percentile by shade, not by an endpoint's colour.
P50_GREY, P99_GREY = "#a6a6a6", "#3c3c3c"


def where_time_goes(name: str, stats: dict, timeline: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """Where one endpoint's time goes, from its responses' Server-Timing
    headers: on the left the latency Userflux measured (p50 and p99) above
    each metric the server reported; on the right each metric's p50 over
    time. ``None`` when the endpoint reported no Server-Timing."""
    metrics = stats.get("server_timing") or {}
    measured = stats.get("latency_ms")
    if not metrics:
        return None
    rows = ([("measured", measured["p50"], measured["p99"])] if measured else []) + [
        (m, v["p50"], v["p99"]) for m, v in sorted(metrics.items(), key=lambda kv: -kv[1]["p99"])
    ]
    fig, (bars, over) = plt.subplots(1, 2, figsize=(SIZE[0], max(SIZE[1], 0.45 * len(rows) + 1.2)))
    ys = list(range(len(rows)))[::-1]
    height = 0.38
    bars.barh([y + height / 2 for y in ys], [r[1] for r in rows], height, label="p50", color=P50_GREY)
    bars.barh([y - height / 2 for y in ys], [r[2] for r in rows], height, label="p99", color=P99_GREY)
    bars.set_yticks(ys, [r[0] for r in rows])
    bars.set(xlabel="ms", title=f"Where the time goes: {name}")
    bars.legend(fontsize="small", loc="lower right")
    bars.grid(alpha=0.3, axis="x")
    chart = TimeChart(over, rates=False)
    for m in sorted(metrics):

        def p50(e: dict, m: str = m) -> float | None:
            return e.get("endpoints", {}).get(name, {}).get("server_timing", {}).get(m, {}).get("p50")

        chart.line(tl.series(timeline, p50), m, (colors or {}).get(m))
    chart.finish("Each metric over time", "p50 (ms)", legend=bool(chart.ts))
    return _png(fig)


def flows(timeline: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """Per flow, completed and failed iterations per second."""
    names = sorted({n for e in timeline for n in e.get("flows", {})})
    if not names:
        return None
    colors = _colors(colors, names)
    fig, ax = plt.subplots(figsize=SIZE)
    chart = TimeChart(ax)
    for n in names:
        chart.line(tl.series(timeline, lambda e, n=n: e.get("flows", {}).get(n, {}).get("rate", 0)),
                   f"{n} completed", colors.get(n))  # fmt: skip
        failed = tl.series(timeline, lambda e, n=n: tl.per_second(e, e.get("flows", {}).get(n, {}).get("failed", 0)))
        if any(failed.values()):
            chart.line(failed, f"{n} failed", colors.get(n), style="--")
    chart.finish("Flow iterations", "iterations per second")
    return _png(fig)


def errors_over_time(timeline: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """Failed requests per second, per endpoint (a partial second's count per its covered time)."""
    if not any(e.get("errors") for e in timeline):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    chart = TimeChart(ax)
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    colors = _colors(colors, names)
    per = {
        n: tl.series(timeline, lambda e, n=n: tl.per_second(e, e["endpoints"].get(n, {}).get("errors", 0)))
        for n in names
    }
    _draw_named(chart, per, colors)
    chart.finish("Errors over time", "errors per second")
    return _png(fig)


def workers(timeline: list[dict], events: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """VUs (workers) per endpoint each second, with the autoscaler's changes marked."""
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    if not timeline or not any(e.get("vus") for e in timeline):
        return None
    colors = _colors(colors, names)
    fig, ax = plt.subplots(figsize=SIZE)
    chart = TimeChart(ax, rates=False)
    per = {n: tl.series(timeline, lambda e, n=n: e["endpoints"].get(n, {}).get("vus", 0)) for n in names}
    _draw_named(chart, per, colors, step=True)
    for ev in events:
        ax.annotate(
            "",
            xy=(ev["t"], ev["to"]),
            xytext=(ev["t"], ev["from"]),
            arrowprops={"arrowstyle": "->", "color": EVENT, "lw": 1.2},
        )
    if events:
        ax.plot([], [], color=EVENT, label="scaling event")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    chart.finish("Workers per endpoint", "workers (VUs)")
    return _png(fig)


# Scaling events: a colour no endpoint has (the palette's are tab10/tab20).
EVENT = "#e0115f"


def heat_rates(stats: smp.SampleStats, covered: dict[int, float] | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """The heat map's cells as requests per second per latency bin: each
    time column's counts over the seconds the run covered of it (a partial
    first or last second counts for what it covered, from the timeline's
    ``covered``). Returns (rates, seconds per column, covered seconds per
    column); at most :data:`HEAT_COLUMNS` columns."""
    heat = stats.heat
    merge = -(-heat.shape[1] // HEAT_COLUMNS)  # the reader's columns summed into one
    if merge > 1:
        pad = (-heat.shape[1]) % merge
        heat = np.pad(heat, ((0, 0), (0, pad))).reshape(heat.shape[0], -1, merge).sum(axis=2)
    step = merge * stats.step
    seconds = np.full(heat.shape[1], float(step))
    for t, c in (covered or {}).items():
        col = (t - stats.origin) // step
        if 0 <= col < seconds.size:
            seconds[col] -= 1.0 - c
    return heat / np.maximum(seconds, 1e-3), step, seconds


def samples_heatmap(stats: smp.SampleStats, covered: dict[int, float] | None = None) -> bytes | None:
    """Every sampled request: how many completed per second at each latency
    (log scale), from samples.ndjson. The colour scale is logarithmic, from
    the lightest non-empty cell to the busiest, so the few slow requests of
    the tail show as plainly as the many fast ones. A run longer than
    :data:`HEAT_COLUMNS` seconds is drawn in wider time columns."""
    if stats.heat.size == 0 or not stats.heat.any():
        return None
    rates, step, _ = heat_rates(stats, covered)
    nonzero = rates[rates > 0]
    lo, hi = float(nonzero.min()), float(nonzero.max())
    fig, ax = plt.subplots(figsize=SIZE)
    edges_y = [smp.lat_edge_ms(i) for i in range(smp.LAT_BINS + 1)]
    edges_x = [stats.origin + i * step for i in range(rates.shape[1] + 1)]
    norm = LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))
    mesh = ax.pcolormesh(edges_x, edges_y, np.where(rates > 0, rates, np.nan), cmap="viridis", norm=norm)
    bar = fig.colorbar(mesh, ax=ax)
    bar.set_label("requests/s per latency bin", fontsize="small")
    # the lightest non-empty cell's rate is written at the bar's foot
    ticks = [t for t in bar.get_ticks() if lo * 1.5 < t <= hi] + [lo]
    bar.set_ticks(ticks)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}" if v < 10 else f"{v:,.0f}"))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yscale("log")
    _log_labels(ax)
    rows = np.flatnonzero(stats.heat.any(axis=1))
    ax.set_ylim(edges_y[rows[0]], edges_y[rows[-1] + 1])
    time_axis(ax, edges_x[0], edges_x[-1])
    per = "" if step == 1 else f", in columns of {hms(step) if step >= 60 else f'{step} s'}"
    ax.set(ylabel="latency (ms)", title=f"Sampled requests ({stats.plotted:,}{per})")
    return _png(fig)


# The knee: a trial's verdict by marker shape (and fill), all in black, so
# it reads without colour; colours belong to endpoints (issue #28).
VERDICT_MARKERS = {
    "pass": {"marker": "o", "markerfacecolor": TOTAL, "markersize": 6},
    "fail": {"marker": "X", "markerfacecolor": "white", "markersize": 8},
    "noisy": {"marker": "D", "markerfacecolor": "#999999", "markersize": 6},
    "confirmed": {"marker": "*", "markerfacecolor": TOTAL, "markersize": 13},
    "not_confirmed": {"marker": "*", "markerfacecolor": "white", "markersize": 13},
}
VERDICT_LABELS = {
    "pass": "pass",
    "fail": "fail",
    "noisy": "noisy (counted as fail)",
    "confirmed": "confirmation: held",
    "not_confirmed": "confirmation: did not hold",
}
# The SLO line: a colour no endpoint has, as the scaling events'.
SLO = EVENT


def knee(c) -> bytes | None:
    """The latency–throughput curve of a capacity search (:mod:`knee`'s
    ``Curve``): one percentile of each judged trial against the rate it
    achieved (a VU search: its VUs), corrected solid and measured dashed,
    log latency axis; each trial's verdict by marker on the series it was
    judged on; the SLO as a horizontal line labelled with its expression;
    the bracket [highest pass, lowest fail] shaded."""
    if not c.points:
        return None
    fig, ax = plt.subplots(figsize=(SIZE[0], SIZE[1] * 1.25))
    judged = c.judged_on
    drawn: list[float] = []
    for kind, style in (("corrected", "-"), ("measured", "--")):
        xs, ys = c.series(kind)
        if xs:
            label = f"{c.name} {kind}" + (" (judged)" if kind == judged else "")
            if drawn and len(drawn) == len(ys) and np.allclose(drawn, ys, rtol=0.02, atol=0.0):
                label += " (≈ corrected)"  # one on the other: said, as everywhere (issue #28)
            drawn = drawn or ys
            ax.plot(xs, ys, linestyle=style, color=TOTAL, linewidth=1.4, label=label,
                    marker="." if kind != judged else None)  # fmt: skip
    for verdict, look in VERDICT_MARKERS.items():
        pts = [p for p in c.points if p.verdict == verdict and getattr(p, judged) is not None]
        if pts:
            ax.plot([p.x for p in pts], [getattr(p, judged) for p in pts], linestyle="none", color=TOTAL,
                    markeredgecolor=TOTAL, markeredgewidth=1.2, label=VERDICT_LABELS[verdict], zorder=3,
                    **look)  # fmt: skip
    # trials that dropped sends: apart from the line, ringed, one legend entry
    for kind in ("corrected", "measured"):
        xs, ys = c.series(kind, apart=True)
        if xs and kind != judged:
            ax.plot(xs, ys, linestyle="none", marker=".", color=TOTAL, label="_apart")
    xs, ys = c.series(judged, apart=True)
    if xs:
        ax.plot(xs, ys, linestyle="none", marker="o", markersize=16, markerfacecolor="none", markeredgecolor=TOTAL,
                markeredgewidth=0.8, label="sends dropped: not joined")  # fmt: skip
    for slo in c.slos:
        ax.axhline(slo.limit, color=SLO, linewidth=1.2, label=f"SLO {slo.expression}")
        # at the right, under the line: past the knee the points are above it, and the legend is not there
        ax.annotate(slo.expression, (1, slo.limit), xycoords=("axes fraction", "data"), xytext=(-4, -11),
                    textcoords="offset points", ha="right", fontsize="small", color=SLO)  # fmt: skip
    if c.bracket:
        lo, hi = c.bracket
        unit = "VUs" if c.over == "vus" else "req/s"
        ax.axvspan(lo, hi, color=TOTAL, alpha=0.12, linewidth=0,
                   label=f"bracket {lo:,.4g}–{hi:,.4g} {unit} (pass–fail)")  # fmt: skip
    ax.set_yscale("log")
    _log_labels(ax)
    ax.set_xlim(left=0)
    if c.over == "vus":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 or v == 0 else f"{v:g}"))
    what = "VUs" if c.over == "vus" else "achieved rate"
    ax.set(xlabel=c.xlabel, ylabel=f"{c.name} latency (ms)", title=f"Capacity search: {c.name} latency by {what}")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)
