"""The report's figures. Each function takes what it draws and returns PNG
bytes, or ``None`` when the run has no such data (a chart is left out, never
drawn empty). Axes are labelled with units."""

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator  # noqa: E402

from . import samples as smp  # noqa: E402
from .colors import TOTAL, palette  # noqa: E402
from .hdr import Histogram  # noqa: E402

DPI = 100
SIZE = (9, 3.6)
# The heat map draws at most this many time columns (a 900-pixel chart).
HEAT_COLUMNS = 900
# When a list: every chart drawn appends (chart title, series label,
# colour) for each of its lines and bars (tests check the colours).
RECORD: list[tuple[str, str, str]] | None = None


def _record(fig) -> None:
    from matplotlib.colors import to_hex

    for ax in fig.axes:
        title = ax.get_title()
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
    if RECORD is not None:
        _record(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _seconds(timeline: list[dict]) -> list[float]:
    return [e["t"] for e in timeline]


def _colors(colors: dict[str, str] | None, names) -> dict[str, str]:
    return colors if colors is not None else palette(names)


def throughput(timeline: list[dict], label: str = "", colors: dict[str, str] | None = None) -> bytes | None:
    """Requests per second over the run: the total and each endpoint."""
    if not timeline:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    x = _seconds(timeline)
    ax.plot(x, [e["rps"] for e in timeline], label=f"total{label}", linewidth=2, color=TOTAL)
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    colors = _colors(colors, names)
    if len(names) > 1:
        for n in names:
            ys = [e["endpoints"].get(n, {}).get("rps", 0) for e in timeline]
            ax.plot(x, ys, label=n, linewidth=1, color=colors.get(n))
    ax.set(xlabel="time since start (s)", ylabel="requests per second", title="Throughput")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def latency_over_time(timeline: list[dict]) -> bytes | None:
    """p50, p95 and p99 latency of the responses completed in each second."""
    points = [e for e in timeline if e.get("p50") is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    x = _seconds(points)
    for key in ("p50", "p95", "p99"):
        ax.plot(x, [e[key] for e in points], label=key)
    ax.set(xlabel="time since start (s)", ylabel="latency (ms)", title="Latency percentiles over time")
    ax.set_yscale("log")
    _log_labels(ax)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
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
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def endpoints(stats: dict[str, dict], colors: dict[str, str] | None = None) -> bytes | None:
    """p50 / p90 / p99 latency of each endpoint, side by side: the
    endpoint's colour, lighter for the lower percentiles."""
    named = [(n, e["latency_ms"]) for n, e in sorted(stats.items()) if e.get("latency_ms")]
    if len(named) < 1:
        return None
    colors = _colors(colors, stats)
    fig, ax = plt.subplots(figsize=SIZE)
    width = 0.25
    for k, key in enumerate(("p50", "p90", "p99")):
        xs = [i + (k - 1) * width for i in range(len(named))]
        alpha = (0.45, 0.7, 1.0)[k]
        for x, (n, lat) in zip(xs, named, strict=True):
            ax.bar([x], [lat[key]], width, color=colors.get(n), alpha=alpha, label=n if k == 2 else None)
    ax.set_xticks(range(len(named)), [n for n, _ in named])
    ax.set(ylabel="latency (ms)", title="Latency per endpoint")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


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
    bars.barh([y + height / 2 for y in ys], [r[1] for r in rows], height, label="p50")
    bars.barh([y - height / 2 for y in ys], [r[2] for r in rows], height, label="p99")
    bars.set_yticks(ys, [r[0] for r in rows])
    bars.set(xlabel="ms", title=f"Where the time goes: {name}")
    bars.legend(fontsize="small", loc="lower right")
    bars.grid(alpha=0.3, axis="x")
    plotted = False
    for m in sorted(metrics):
        pts = [(e["t"], e["endpoints"][name]["server_timing"][m]["p50"]) for e in timeline
               if m in e.get("endpoints", {}).get(name, {}).get("server_timing", {})]  # fmt: skip
        if pts:
            over.plot([t for t, _ in pts], [v for _, v in pts], label=m, color=(colors or {}).get(m))
            plotted = True
    over.set(xlabel="time since start (s)", ylabel="p50 (ms)", title="Each metric over time")
    if plotted:
        over.legend(fontsize="small", loc="best")
    over.grid(alpha=0.3)
    return _png(fig)


def flows(timeline: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """Per flow, completed and failed iterations per second."""
    names = sorted({n for e in timeline for n in e.get("flows", {})})
    if not names:
        return None
    colors = _colors(colors, names)
    fig, ax = plt.subplots(figsize=SIZE)
    x = _seconds(timeline)
    for n in names:
        ys = [e.get("flows", {}).get(n, {}).get("rate", 0) for e in timeline]
        line = ax.plot(x, ys, label=f"{n} completed", color=colors.get(n))
        failed = [e.get("flows", {}).get(n, {}).get("failed", 0) for e in timeline]
        if any(failed):
            ax.plot(x, failed, label=f"{n} failed", linestyle="--", color=line[0].get_color())
    ax.set(xlabel="time since start (s)", ylabel="iterations per second", title="Flow iterations")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def errors_over_time(timeline: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """Failed requests per second, per endpoint."""
    if not any(e.get("errors") for e in timeline):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    x = _seconds(timeline)
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    colors = _colors(colors, names)
    for n in names:
        ax.plot(x, [e["endpoints"].get(n, {}).get("errors", 0) for e in timeline], label=n, color=colors.get(n))
    ax.set(xlabel="time since start (s)", ylabel="errors per second", title="Errors over time")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def workers(timeline: list[dict], events: list[dict], colors: dict[str, str] | None = None) -> bytes | None:
    """VUs (workers) per endpoint each second, with the autoscaler's changes marked."""
    names = sorted({n for e in timeline for n in e.get("endpoints", {})})
    if not timeline or not any(e.get("vus") for e in timeline):
        return None
    colors = _colors(colors, names)
    fig, ax = plt.subplots(figsize=SIZE)
    x = _seconds(timeline)
    for n in names:
        ys = [e["endpoints"].get(n, {}).get("vus", 0) for e in timeline]
        ax.step(x, ys, where="post", label=n, color=colors.get(n))
    for ev in events:
        ax.annotate(
            "",
            xy=(ev["t"], ev["to"]),
            xytext=(ev["t"], ev["from"]),
            arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.2},
        )
    if events:
        ax.plot([], [], color="tab:red", label="scaling event")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="time since start (s)", ylabel="workers (VUs)", title="Workers per endpoint")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def samples_heatmap(stats: smp.SampleStats) -> bytes | None:
    """Every sampled request: how many completed in each second at each
    latency (log scale), from samples.ndjson. A run longer than
    :data:`HEAT_COLUMNS` seconds is drawn in wider time columns, summed."""
    heat = stats.heat
    if heat.size == 0 or not heat.any():
        return None
    merge = -(-heat.shape[1] // HEAT_COLUMNS)  # the reader's columns summed into one
    if merge > 1:
        pad = (-heat.shape[1]) % merge
        heat = np.pad(heat, ((0, 0), (0, pad))).reshape(heat.shape[0], -1, merge).sum(axis=2)
    step = merge * stats.step  # seconds a column
    fig, ax = plt.subplots(figsize=SIZE)
    edges_y = [smp.lat_edge_ms(i) for i in range(smp.LAT_BINS + 1)]
    edges_x = [stats.t0 + i * step for i in range(heat.shape[1] + 1)]
    mesh = ax.pcolormesh(edges_x, edges_y, np.where(heat > 0, heat, np.nan), cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="requests" if step == 1 else f"requests per {step} s")
    ax.set_yscale("log")
    _log_labels(ax)
    rows = np.flatnonzero(heat.any(axis=1))
    ax.set_ylim(edges_y[rows[0]], edges_y[rows[-1] + 1])
    ax.set(xlabel="time since start (s)", ylabel="latency (ms)", title=f"Sampled requests ({stats.plotted:,})")
    return _png(fig)
